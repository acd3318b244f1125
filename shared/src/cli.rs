//! Command-line conventions shared by both binaries.

/// The long names of the arguments that have no environment variable. In a
/// pod nobody passes flags, so both binaries promise an env var for every
/// flag; each binary's tests assert that this is empty.
pub fn flags_without_env(command: &clap::Command) -> Vec<String> {
    command
        .get_arguments()
        .filter(|arg| !matches!(arg.get_id().as_str(), "help" | "version"))
        .filter(|arg| arg.get_env().is_none())
        .map(|arg| arg.get_long().unwrap_or(arg.get_id().as_str()).to_string())
        .collect()
}

/// Rewrites a clap error so that it names the environment variable behind
/// the bad value (clap itself only names the flag, but in a pod nobody
/// passes flags).
pub fn explain_clap_error(error: &clap::Error, command: &clap::Command) -> String {
    use clap::error::ContextKind;
    let rendered = error.render().to_string();
    let Some(invalid_arg) = error.get(ContextKind::InvalidArg).map(|v| v.to_string()) else {
        return rendered;
    };
    let long = invalid_arg
        .trim_start_matches("--")
        .split([' ', '=', '<'])
        .next()
        .unwrap_or_default()
        .to_string();
    let Some(arg) = command
        .get_arguments()
        .find(|a| a.get_long() == Some(long.as_str()))
    else {
        return rendered;
    };
    let Some(env) = arg.get_env().map(|e| e.to_string_lossy().into_owned()) else {
        return rendered;
    };
    let value = error
        .get(ContextKind::InvalidValue)
        .map(|v| v.to_string())
        .unwrap_or_default();
    let reason = std::error::Error::source(error)
        .map(|s| s.to_string())
        .or_else(|| {
            error
                .get(ContextKind::ValidValue)
                .map(|v| format!("expected one of: {v}"))
        })
        .unwrap_or_else(|| rendered.lines().next().unwrap_or_default().to_string());
    if arg.is_hide_env_values_set() {
        format!("{env} (--{long}) is invalid: {reason}")
    } else {
        format!("{env}={value:?} (--{long}) is invalid: {reason}")
    }
}

#[cfg(test)]
mod tests {
    use clap::{Arg, Command};

    #[test]
    fn names_the_flags_without_env() {
        let command = Command::new("x")
            .arg(Arg::new("a").long("alpha").env("ALPHA"))
            .arg(Arg::new("b").long("beta"))
            .arg(Arg::new("c"));
        assert_eq!(super::flags_without_env(&command), ["beta", "c"]);
        let with_all = Command::new("x").arg(Arg::new("a").long("alpha").env("ALPHA"));
        assert!(super::flags_without_env(&with_all).is_empty());
    }
}
