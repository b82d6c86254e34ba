//! `cmd:'WRAPPER ARGS'`: any wrapper that takes the command at its end (bwrap, firejail,
//! unshare, setpriv, systemd-run, a script). Its command line is cut into items: an option with
//! its arguments (`--ro-bind / /`), options that only work together (unshare's `--user
//! --map-root-user`), and, for an option standing for several protections, one item per part
//! (`--unshare-all[--unshare-pid]`). The wrappers the registry knows have their option syntax
//! there; an option it does not list is kept and reported as not ablated. For a wrapper breakout
//! does not know at all, each option with the words after it that do not start with `-` is an
//! item, and every item is ablated.

use super::{launch, registry, Item};
use breakout_attacks::{LaunchRequest, Launched, Launcher, Layer};
use std::collections::BTreeSet;

/// One option of a wrapper.
#[derive(Debug)]
pub struct Opt {
    pub name: &'static str,
    /// How many words after it are its arguments (when not joined with `=`).
    pub args: usize,
    /// The protection it stands for (None: set-up, such as a bind mount).
    pub layer: Option<Layer>,
    /// Whether ablation takes it out.
    pub ablate: bool,
    /// Options with the same group are one item.
    pub group: Option<&'static str>,
}

/// A wrapper's default that an option turns off (firejail's default profile, `--noprofile`).
#[derive(Debug)]
pub struct WrapperDefault {
    pub name: &'static str,
    /// None: it stands for several protections, so it is a candidate for every probe.
    pub layer: Option<Layer>,
    pub off: &'static [&'static str],
    pub absent_if: &'static [&'static str],
}

impl WrapperDefault {
    fn applies(&self, argv: &[String]) -> bool {
        !argv[1..]
            .iter()
            .any(|w| self.absent_if.iter().any(|p| w.starts_with(p)))
    }
}

/// A wrapper's option syntax.
#[derive(Debug)]
pub struct Syntax {
    pub options: &'static [Opt],
    /// Options that stand for several others: each part is ablated on its own.
    pub expands: &'static [(&'static str, &'static [&'static str])],
    /// What the wrapper always does, whatever the options (listed, never ablated).
    pub implicit: &'static [(&'static str, Layer, &'static str)],
    /// What the wrapper does by default and an option turns off: ablated by adding that
    /// option. Absent (no item) when an option starting with one of `absent_if` is given.
    pub defaults: &'static [WrapperDefault],
    /// The word after which everything is the command.
    pub end_of_options: Option<&'static str>,
    /// Options may carry their value as `--name=value`.
    pub joined_values: bool,
    /// When the option list is the wrapper's whole (named by the version it was read from): an
    /// option not in it, or one short of its arguments, is refused on the host, since the
    /// wrapper would exit before running the probe.
    pub complete: Option<&'static str>,
    /// The options that drop and add back one capability (`--cap-drop`, `--cap-add`), when the
    /// wrapper has them: its withheld capabilities are then named and can be given back one by
    /// one ([`withheld_caps`], [`with_caps`]).
    pub cap_options: Option<(&'static str, &'static str)>,
}

impl Syntax {
    fn find(&self, word: &str) -> Option<&'static Opt> {
        let name = if self.joined_values {
            word.split('=').next().unwrap_or(word)
        } else {
            word
        };
        self.options.iter().find(|o| o.name == name)
    }

    fn expansion(&self, word: &str) -> Option<&'static [&'static str]> {
        self.expands
            .iter()
            .find(|(name, _)| *name == word)
            .map(|(_, parts)| *parts)
    }
}

/// What a run of words on the command line is.
#[derive(Debug, Clone, PartialEq)]
enum Part {
    /// An option and its arguments.
    Option {
        words: Vec<String>,
        item: String,
        layer: Option<Layer>,
        ablate: bool,
        known: bool,
    },
    /// An option that stands for several others (`--unshare-all`).
    Expanding {
        word: String,
        parts: Vec<(String, Option<Layer>)>,
    },
    /// `--` and what follows, or the first word that is no option: kept as written.
    Tail(Vec<String>),
}

fn expanded_name(word: &str, part: &str) -> String {
    format!("{word}[{part}]")
}

/// What the wrapper would refuse before running the command, said on the host: an option a
/// complete syntax does not have, or one whose arguments run into the end of the line (the
/// probe's path, appended there, would become its argument).
pub fn check(argv: &[String]) -> Result<(), String> {
    let Some(rt) = registry::for_binary(&argv[0]) else {
        return Ok(());
    };
    let Some(syntax) = rt.syntax() else {
        return Ok(());
    };
    let words = &argv[1..];
    let mut i = 0;
    while i < words.len() {
        let word = &words[i];
        if syntax.end_of_options == Some(word.as_str()) || !word.starts_with('-') {
            return Ok(());
        }
        let nargs = match syntax.find(word) {
            Some(_) if syntax.joined_values && word.contains('=') => 0,
            Some(opt) => opt.args,
            None if syntax.expansion(word).is_some() => 0,
            None => match syntax.complete {
                Some(version) => {
                    let near =
                        crate::describe::near_matches(word, syntax.options.iter().map(|o| o.name));
                    return Err(format!(
                        "{} has no option `{word}` ({version}'s options{})",
                        rt.name,
                        match near.first() {
                            Some(best) => format!("; did you mean {best}?"),
                            None => String::new(),
                        }
                    ));
                }
                None => 0,
            },
        };
        if i + nargs >= words.len() {
            return Err(format!(
                "{} option `{word}` takes {nargs} argument{} but the line ends first (the probe \
                 is appended at the end, so it would become the argument)",
                rt.name,
                if nargs == 1 { "" } else { "s" }
            ));
        }
        i += 1 + nargs;
    }
    Ok(())
}

/// The parts of a wrapper's command line (argv[0] excluded).
fn parse(argv: &[String]) -> Vec<Part> {
    let syntax = registry::for_binary(&argv[0]).and_then(|r| r.syntax());
    let words = &argv[1..];
    let mut parts = Vec::new();
    let mut i = 0;
    while i < words.len() {
        let word = &words[i];
        let is_end = syntax.and_then(|s| s.end_of_options) == Some(word.as_str())
            || (syntax.is_none() && word == "--");
        if is_end || !word.starts_with('-') {
            parts.push(Part::Tail(words[i..].to_vec()));
            break;
        }
        if let Some(subs) = syntax.and_then(|s| s.expansion(word)) {
            let syntax = syntax.expect("an expansion comes from a syntax");
            parts.push(Part::Expanding {
                word: word.clone(),
                parts: subs
                    .iter()
                    .map(|s| (s.to_string(), syntax.find(s).and_then(|o| o.layer)))
                    .collect(),
            });
            i += 1;
            continue;
        }
        let known = syntax.and_then(|s| s.find(word));
        let nargs = match known {
            Some(_) if syntax.is_some_and(|s| s.joined_values) && word.contains('=') => 0,
            Some(opt) => opt.args,
            // Unknown: the words after it that are not options are taken as its arguments.
            None => words[i + 1..]
                .iter()
                .take_while(|w| !w.starts_with('-'))
                .count()
                // A wrapper's last words are usually its command, which we append ourselves; an
                // unknown option takes at most one argument so a trailing command is not eaten.
                .min(1),
        };
        let end = (i + 1 + nargs).min(words.len());
        let group_words = words[i..end].to_vec();
        let (item, layer, ablate) = match (known, syntax) {
            (Some(opt), _) => (
                opt.group
                    .map(str::to_string)
                    .unwrap_or(group_words.join(" ")),
                opt.layer,
                opt.ablate,
            ),
            // A wrapper we know, an option we do not: kept, listed.
            (None, Some(_)) => (group_words.join(" "), None, false),
            // A wrapper we do not know: every option is an item.
            (None, None) => (group_words.join(" "), None, true),
        };
        parts.push(Part::Option {
            words: group_words,
            item,
            layer,
            ablate,
            known: known.is_some() || syntax.is_none(),
        });
        i = end;
    }
    // Options of one group are one item, named by what the user wrote: "--user --map-root-user".
    let mut names: Vec<(String, Vec<String>)> = Vec::new();
    for part in &parts {
        if let Part::Option { words, item, .. } = part {
            match names.iter_mut().find(|(g, _)| g == item) {
                Some((_, seen)) => seen.push(words.join(" ")),
                None => names.push((item.clone(), vec![words.join(" ")])),
            }
        }
    }
    for part in &mut parts {
        if let Part::Option { item, .. } = part {
            if let Some((_, members)) = names.iter().find(|(g, _)| g == item) {
                let mut unique: Vec<&String> = Vec::new();
                for m in members {
                    if !unique.contains(&m) {
                        unique.push(m);
                    }
                }
                *item = unique
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(" ");
            }
        }
    }
    parts
}

/// The items of a wrapper command line.
pub fn items(argv: &[String]) -> Vec<Item> {
    let mut items: Vec<Item> = Vec::new();
    let mut push = |item: Item| {
        if !items.iter().any(|i| i.name == item.name) {
            items.push(item);
        }
    };
    for part in parse(argv) {
        match part {
            Part::Option {
                item,
                layer,
                ablate,
                known,
                ..
            } => {
                if ablate {
                    push(Item::ablatable(item, layer));
                } else if !known {
                    push(Item::kept(
                        item,
                        None,
                        "an option breakout does not know: kept in every run",
                    ));
                } else if layer.is_some() {
                    push(Item::kept(
                        item,
                        layer,
                        "needs a descriptor breakout cannot pass: kept in every run",
                    ));
                }
            }
            Part::Expanding { word, parts } => {
                for (sub, layer) in parts {
                    push(Item::ablatable(expanded_name(&word, &sub), layer));
                }
            }
            Part::Tail(words) if words.len() > 1 || words.first().is_some_and(|w| w != "--") => {
                push(Item::kept(
                    words.join(" "),
                    None,
                    "the command part of the wrapper: kept as written",
                ));
            }
            Part::Tail(_) => {}
        }
    }
    if let Some(syntax) = registry::for_binary(&argv[0]).and_then(|r| r.syntax()) {
        for default in syntax.defaults.iter().filter(|d| d.applies(argv)) {
            push(Item::ablatable(default.name, default.layer));
        }
        for (name, layer, note) in syntax.implicit {
            push(Item::whole(*name, Some(*layer), note));
        }
    }
    items
}

/// The command line without the named items.
pub fn without(argv: &[String], names: &BTreeSet<String>) -> Vec<String> {
    let mut out = vec![argv[0].clone()];
    // A default taken out: the option that turns it off, first (before the command).
    if let Some(syntax) = registry::for_binary(&argv[0]).and_then(|r| r.syntax()) {
        for default in syntax.defaults.iter().filter(|d| d.applies(argv)) {
            if names.contains(default.name) {
                out.extend(default.off.iter().map(|w| w.to_string()));
            }
        }
    }
    for part in parse(argv) {
        match part {
            Part::Option { words, item, .. } => {
                if !names.contains(&item) {
                    out.extend(words);
                }
            }
            Part::Expanding { word, parts } => {
                let dropped = parts
                    .iter()
                    .any(|(sub, _)| names.contains(&expanded_name(&word, sub)));
                if dropped {
                    out.extend(
                        parts
                            .into_iter()
                            .map(|(sub, _)| sub)
                            .filter(|sub| !names.contains(&expanded_name(&word, sub))),
                    );
                } else {
                    out.push(word);
                }
            }
            Part::Tail(words) => out.extend(words),
        }
    }
    out
}

/// Every capability the kernel knows, by name, in index order.
pub fn all_caps() -> Vec<String> {
    let mut all: Vec<caps::Capability> = caps::all().into_iter().collect();
    all.sort_by_key(|c| c.index());
    all.into_iter().map(|c| c.to_string()).collect()
}

fn canonical_cap(name: &str) -> String {
    let upper = name.to_ascii_uppercase();
    if upper.starts_with("CAP_") {
        upper
    } else {
        format!("CAP_{upper}")
    }
}

/// The wrapper's options that drop and add a capability, from its syntax in the registry.
fn cap_options(argv: &[String]) -> Option<(&'static str, &'static str)> {
    registry::for_binary(&argv[0])?.syntax()?.cap_options
}

/// The capabilities the wrapper's drop option withholds (given back with its add option; bwrap's
/// `--cap-drop` and `--cap-add`). None: the wrapper has no such options, or none is given.
pub fn withheld_caps(argv: &[String]) -> Option<(String, Vec<String>)> {
    let (drop_option, add_option) = cap_options(argv)?;
    let mut item = None;
    let mut dropped: BTreeSet<String> = BTreeSet::new();
    let mut added: BTreeSet<String> = BTreeSet::new();
    for part in parse(argv) {
        if let Part::Option {
            words, item: name, ..
        } = part
        {
            match (words[0].as_str(), words.get(1)) {
                (word, Some(cap)) if word == drop_option => {
                    item.get_or_insert(name);
                    if cap.eq_ignore_ascii_case("ALL") {
                        dropped.extend(all_caps());
                    } else {
                        dropped.insert(canonical_cap(cap));
                    }
                }
                (word, Some(cap)) if word == add_option && !cap.eq_ignore_ascii_case("ALL") => {
                    added.insert(canonical_cap(cap));
                }
                _ => {}
            }
        }
    }
    let order = all_caps();
    let withheld = order
        .into_iter()
        .filter(|c| dropped.contains(c) && !added.contains(c))
        .collect();
    item.map(|i| (i, withheld))
}

/// The command line keeping these capabilities too (the wrapper's add option: bwrap's
/// `--cap-add`).
pub fn with_caps(argv: &[String], extra: &[String]) -> Vec<String> {
    let Some((_, add)) = cap_options(argv) else {
        return argv.to_vec();
    };
    let mut out = vec![argv[0].clone()];
    for cap in extra {
        out.push(add.to_string());
        out.push(cap.clone());
    }
    out.extend(argv[1..].iter().cloned());
    out
}

/// Starts a wrapper command line with the payload at its end.
pub struct CmdLauncher {
    pub argv: Vec<String>,
}

impl Launcher for CmdLauncher {
    fn launch(&self, request: &LaunchRequest) -> Result<Launched, String> {
        let label = std::path::Path::new(&self.argv[0])
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "cmd".to_string());
        let cgroup = launch::LaunchCgroup::create(&super::cgroup_base(request), &label)
            .map_err(|e| e.to_string())?;
        let mut argv = self.argv.clone();
        argv.extend(request.argv.iter().cloned());
        let timeout = registry::for_binary(&self.argv[0])
            .map_or(request.timeout, |rt| rt.launch_timeout(request.timeout));
        launch::run(&argv, request, timeout, &cgroup).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    fn names(items: &[Item]) -> Vec<(String, bool)> {
        items
            .iter()
            .map(|i| (i.name.clone(), i.ablatable))
            .collect()
    }

    #[test]
    fn bwrap_options_keep_their_arguments() {
        let argv = words("/usr/bin/bwrap --unshare-pid --ro-bind / / --proc /proc --dev /dev --frobnicate x --cap-drop ALL");
        let items = items(&argv);
        assert_eq!(
            names(&items),
            [
                ("--unshare-pid".to_string(), true),
                ("--frobnicate x".to_string(), false),
                ("--cap-drop ALL".to_string(), true),
                ("no_new_privs (bwrap always sets it)".to_string(), false),
            ]
        );
        let out = without(&argv, &BTreeSet::from(["--unshare-pid".to_string()]));
        assert_eq!(
            out,
            words("/usr/bin/bwrap --ro-bind / / --proc /proc --dev /dev --frobnicate x --cap-drop ALL")
        );
        let (item, caps) = withheld_caps(&argv).unwrap();
        assert_eq!(item, "--cap-drop ALL");
        assert!(caps.contains(&"CAP_SYS_PTRACE".to_string()) && caps.len() > 30);
    }

    #[test]
    fn unshare_all_is_ablated_one_namespace_at_a_time() {
        let argv = words("/usr/bin/bwrap --unshare-all --ro-bind / /");
        let items = items(&argv);
        assert!(items
            .iter()
            .any(|i| i.name == "--unshare-all[--unshare-pid]" && i.layer == Some(Layer::PidNs)));
        let out = without(
            &argv,
            &BTreeSet::from(["--unshare-all[--unshare-pid]".to_string()]),
        );
        assert_eq!(
            out,
            words("/usr/bin/bwrap --unshare-user-try --unshare-ipc --unshare-net --unshare-uts --unshare-cgroup-try --ro-bind / /")
        );
    }

    #[test]
    fn unshare_groups_options_that_only_work_together() {
        let argv = words(
            "/usr/bin/unshare --user --map-root-user --pid --fork --mount --mount-proc --net --",
        );
        let items = items(&argv);
        assert_eq!(
            names(&items),
            [
                ("--user --map-root-user".to_string(), true),
                ("--pid".to_string(), true),
                ("--mount --mount-proc".to_string(), true),
                ("--net".to_string(), true),
            ]
        );
        let out = without(
            &argv,
            &BTreeSet::from(["--user --map-root-user".to_string()]),
        );
        assert_eq!(
            out,
            words("/usr/bin/unshare --pid --fork --mount --mount-proc --net --")
        );
    }

    #[test]
    fn an_unknown_wrapper_has_every_option_ablated() {
        let argv = words("/opt/jail --no-net --profile strict -v");
        assert_eq!(
            names(&items(&argv)),
            [
                ("--no-net".to_string(), true),
                ("--profile strict".to_string(), true),
                ("-v".to_string(), true),
            ]
        );
    }

    #[test]
    fn firejails_default_profile_is_an_item_taken_out_by_noprofile() {
        let argv: Vec<String> = ["/usr/bin/firejail", "--quiet"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let found = items(&argv);
        let profile = found
            .iter()
            .find(|i| i.name == "firejail's default profile")
            .expect("the profile is an item");
        assert!(profile.ablatable && profile.layer.is_none());
        assert_eq!(
            without(
                &argv,
                &BTreeSet::from(["firejail's default profile".to_string()])
            ),
            ["/usr/bin/firejail", "--noprofile", "--quiet"]
        );
        // A profile of the user's own: no default profile to take out.
        let own: Vec<String> = ["/usr/bin/firejail", "--profile=/etc/firejail/x.profile"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert!(!items(&own)
            .iter()
            .any(|i| i.name == "firejail's default profile"));
    }
}
