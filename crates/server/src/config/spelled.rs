//! How the user gave each setting (a flag, a variable, the file), so that
//! error messages name what was typed.

use std::path::Path;

thread_local! {
    /// How the user gave each setting, by its key (the argument's id), from
    /// this thread's last parse (the settings are resolved on the thread
    /// that parsed them): what error messages name (see [`typed`]).
    static SPELLED: std::cell::RefCell<Vec<(String, String)>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

pub(super) fn remember_spellings(m: &clap::ArgMatches, file: Option<&Path>) {
    let mut spelled = Vec::new();
    let mut note = |m: &clap::ArgMatches| {
        for id in m.ids() {
            let key = id.as_str();
            let how = match m.value_source(key) {
                Some(clap::parser::ValueSource::CommandLine) => {
                    format!("--{}", key.replace('_', "-"))
                }
                Some(clap::parser::ValueSource::EnvVariable) => {
                    format!("LATCHKEY_{}", key.to_ascii_uppercase())
                }
                Some(clap::parser::ValueSource::DefaultValue) => match file {
                    Some(path) => format!("`{key}` in {}", path.display()),
                    None => continue,
                },
                _ => continue,
            };
            spelled.push((key.to_owned(), how));
        }
    };
    let mut level = Some(m);
    while let Some(m) = level {
        note(m);
        level = m.subcommand().map(|(_, sub)| sub);
    }
    SPELLED.with(|s| *s.borrow_mut() = spelled);
}

/// A setting as the user gave it, for an error message: `--listen` when
/// typed on the command line, `LATCHKEY_LISTEN` from the environment,
/// `` `listen` in FILE `` from the configuration file; the default when it
/// was given nowhere.
pub fn typed(key: &str) -> String {
    SPELLED
        .with(|s| {
            s.borrow()
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, how)| how.clone())
        })
        .unwrap_or_else(|| {
            format!(
                "the default (neither --{} nor LATCHKEY_{} is set)",
                key.replace('_', "-"),
                key.to_ascii_uppercase()
            )
        })
}
