//! breakout-vm: a disposable QEMU VM that runs a command and brings back its output, its exit
//! code and structured results on a channel of their own.
