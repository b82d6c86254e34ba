//! The workloads: each one's command line and, in [`expected`], the output the outside computes
//! on its own for an attempt's nonce.

use super::{Attempt, Workload, WorkloadMeta, C_PROGRAM, GIT, PYTHON, SHELL, STATIC_PROGRAM};

fn c(mode: &str, a: &Attempt) -> Vec<String> {
    vec![C_PROGRAM.into(), mode.into(), a.nonce.clone()]
}

fn sh(script: &str, a: &Attempt) -> Vec<String> {
    vec![
        SHELL.into(),
        "-c".into(),
        script.into(),
        "workload".into(),
        a.nonce.clone(),
    ]
}

/// A pipeline of busybox applets over the nonce, through a file in its own /tmp.
const SHELL_SCRIPT: &str = r#"set -e
f=$(mktemp)
printf '%s\n' "$1" > "$f"
tr a-f A-F < "$f" | rev | sed 's/^/shell:/'
printf '%s\n' "$1" | fold -w 8 | sort -r | head -n 2 | xargs
wc -c < "$f" | tr -d ' '
rm -f "$f""#;

/// Threads, a subprocess, sqlite3 in a file of its own /tmp, json.
const PYTHON_SCRIPT: &str = r#"import json, os, sqlite3, subprocess, sys, tempfile, threading
nonce = sys.argv[1]
slots = [None] * 4
def work(i):
    slots[i] = "t%d:%s" % (i, nonce[:8])
threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print("threads", ",".join(slots))
p = subprocess.run(["/bin/sh", "-c", 'echo "sub-$0"', nonce], capture_output=True, text=True, check=True)
print(p.stdout.strip())
d = tempfile.mkdtemp()
db = sqlite3.connect(os.path.join(d, "w.db"))
db.execute("create table t (k text, v integer)")
db.executemany("insert into t values (?, ?)", [(nonce, i) for i in range(10)])
db.commit()
k, s = db.execute("select k, sum(v) from t group by k").fetchone()
db.close()
print("sqlite", k, s)
print("json", json.loads(json.dumps({"n": nonce, "l": [1, 2, 3]}))["n"])
"#;

/// git init, add, commit in a directory of its own /tmp; the outside reads back what was
/// committed through git itself.
const GIT_SCRIPT: &str = r#"set -e
d=$(mktemp -d)
cd "$d"
export HOME="$d" GIT_CONFIG_NOSYSTEM=1
git init -q
printf '%s\n' "$1" > f
git add f
git -c user.name=workload -c user.email=workload@breakout commit -q -m "c $1"
git cat-file -p HEAD:f
git log --format=%s
cd /
rm -rf "$d""#;

pub(super) static ALL: [Workload; 12] = [
    Workload {
        meta: WorkloadMeta {
            id: "shell-pipeline",
            title: "busybox shell pipeline",
            what: "sh with mktemp, tr, rev, sed, fold, sort, head, wc over a file in /tmp",
            check: "the transformed nonce, computed outside",
            needs: &[SHELL],
        },
        argv: |a| sh(SHELL_SCRIPT, a),
    },
    Workload {
        meta: WorkloadMeta {
            id: "python",
            title: "Python 3: threads, subprocess, sqlite3, json",
            what: "python3.11 runs four threads, a subprocess, a sqlite3 database in /tmp and a json round trip",
            check: "each step's line for the nonce",
            needs: &[PYTHON, SHELL],
        },
        argv: |a| {
            vec![
                PYTHON.into(),
                "-c".into(),
                PYTHON_SCRIPT.into(),
                a.nonce.clone(),
            ]
        },
    },
    Workload {
        meta: WorkloadMeta {
            id: "c-program",
            title: "dynamic C: file I/O, mmap, mprotect, pthreads, fork/exec/wait",
            what: "a file in /tmp written and read back, mapped shared and made read-only, anonymous memory made read-only, four pthreads, a child that execs sh and is waited for",
            check: "the nonce back from the file, the mapping, each thread and the exec'd child, and the child's exit code",
            needs: &[C_PROGRAM, SHELL],
        },
        argv: |a| c("c-program", a),
    },
    Workload {
        meta: WorkloadMeta {
            id: "static-binary",
            title: "static binary",
            what: "the C workload linked with -static: a file round trip in /tmp and a clock read, no dynamic loader",
            check: "the nonce back from the file",
            needs: &[STATIC_PROGRAM],
        },
        argv: |a| vec![STATIC_PROGRAM.into(), "static".into(), a.nonce.clone()],
    },
    Workload {
        meta: WorkloadMeta {
            id: "tcp-loopback",
            title: "TCP server and client on the sandbox's own loopback",
            what: "a server on 127.0.0.1 (port from the kernel) and a client process exchange the nonce",
            check: "the nonce reversed by the server, as the client received it",
            needs: &[C_PROGRAM],
        },
        argv: |a| c("tcp", a),
    },
    Workload {
        meta: WorkloadMeta {
            id: "unix-pipes",
            title: "unix socket and pipe between its own processes",
            what: "the parent sends the nonce to a child through a pipe; the child answers through a named unix socket in /tmp",
            check: "the nonce upper-cased by the child",
            needs: &[C_PROGRAM],
        },
        argv: |a| c("unix-pipes", a),
    },
    Workload {
        meta: WorkloadMeta {
            id: "signals",
            title: "signals to its own children",
            what: "three children wait for SIGUSR1 and exit with their own codes; one more is ended by SIGTERM",
            check: "three exits by SIGUSR1 and one death by SIGTERM seen by wait",
            needs: &[C_PROGRAM],
        },
        argv: |a| c("signals", a),
    },
    Workload {
        meta: WorkloadMeta {
            id: "timers",
            title: "timers and clock reads",
            what: "clock_gettime on four clocks, gettimeofday, nanosleep, clock_nanosleep, setitimer, a POSIX timer, a timerfd",
            check: "the sleeps took their time, both alarms and the timerfd fired",
            needs: &[C_PROGRAM],
        },
        argv: |a| c("timers", a),
    },
    Workload {
        meta: WorkloadMeta {
            id: "memory",
            title: "memory up to half the profile's limit",
            what: "maps and touches half the profile's memory.max (64 MiB when there is none), page by page",
            check: "every page kept what was written, and the size",
            needs: &[C_PROGRAM],
        },
        argv: |a| {
            let mut v = c("memory", a);
            v.push(a.memory_bytes.to_string());
            v
        },
    },
    Workload {
        meta: WorkloadMeta {
            id: "processes",
            title: "processes up to half pids.max",
            what: "half the profile's pids.max (32 when there is none) children alive at once, then reaped",
            check: "every child started, was alive at once and exited 0",
            needs: &[C_PROGRAM],
        },
        argv: |a| {
            let mut v = c("processes", a);
            v.push(a.processes.to_string());
            v
        },
    },
    Workload {
        meta: WorkloadMeta {
            id: "proc-self",
            title: "reading /proc/self",
            what: "reads its own cmdline, status, exe link and maps",
            check: "the nonce from its own cmdline, its pid in status, its exe's name, a stack in maps",
            needs: &[C_PROGRAM],
        },
        argv: |a| c("proc-self", a),
    },
    Workload {
        meta: WorkloadMeta {
            id: "git",
            title: "git init and a commit in /tmp",
            what: "git init, add, commit in a new directory of /tmp, then cat-file and log",
            check: "the committed file's content and the commit message, read back through git",
            needs: &[GIT, SHELL],
        },
        argv: |a| sh(GIT_SCRIPT, a),
    },
];

/// What the workload `id` must print for `a`, computed here, outside the sandbox.
pub fn expected(id: &str, a: &Attempt) -> String {
    let n = a.nonce.as_str();
    let rev = |s: &str| s.chars().rev().collect::<String>();
    match id {
        "shell-pipeline" => {
            let upper_af: String = n
                .chars()
                .map(|c| {
                    if ('a'..='f').contains(&c) {
                        c.to_ascii_uppercase()
                    } else {
                        c
                    }
                })
                .collect();
            let mut chunks: Vec<String> = n
                .as_bytes()
                .chunks(8)
                .map(|c| String::from_utf8_lossy(c).into_owned())
                .collect();
            chunks.sort();
            chunks.reverse();
            chunks.truncate(2);
            format!(
                "shell:{}\n{}\n{}\n",
                rev(&upper_af),
                chunks.join(" "),
                n.len() + 1
            )
        }
        "python" => {
            let short: String = n.chars().take(8).collect();
            let slots: Vec<String> = (0..4).map(|i| format!("t{i}:{short}")).collect();
            format!(
                "threads {}\nsub-{n}\nsqlite {n} 45\njson {n}\n",
                slots.join(",")
            )
        }
        "c-program" => {
            let mapped = n.replace('a', "A");
            let threads: String = (0..4).map(|i| format!("t{i}:{n}\n")).collect();
            format!("file {n}\nmmap {mapped}\nanon {n}\n{threads}exec {n}\nwait 7\n")
        }
        "static-binary" => format!("static {n} pid-known=1\n"),
        "tcp-loopback" => format!("tcp {}\n", rev(n)),
        "unix-pipes" => format!("unix {}\n", n.to_ascii_uppercase()),
        "signals" => format!("signals usr1=3 term=1 {n}\n"),
        "timers" => format!("timers slept=1 alarms=2 timerfd=1 {n}\n"),
        "memory" => format!("memory {} {n}\n", a.memory_bytes),
        "processes" => format!(
            "processes alive={} reaped={} {n}\n",
            a.processes, a.processes
        ),
        "proc-self" => {
            format!("cmdline {n}\nstatus-pid-matches 1\nexe workload\nmaps-has-stack 1\n")
        }
        "git" => format!("{n}\nc {n}\n"),
        _ => String::new(),
    }
}
