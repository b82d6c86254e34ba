//! The guest's PID 1; everything is in `breakout_vm::init`.
fn main() {
    std::process::exit(breakout_vm::init::main());
}
