//! Command-line conventions shared by both binaries.

/// The long names of the flags that have no environment variable. In a
/// pod nobody passes flags, so both binaries promise an env var for every
/// flag; each binary's tests assert that this is empty. Positional
/// arguments (the assessor's `[MODE] [PROFILE]`, `relay check FILE...`) are
/// words typed at a terminal, each the shorthand of a flag that has one.
pub fn flags_without_env(command: &clap::Command) -> Vec<String> {
    command
        .get_arguments()
        .filter(|arg| !matches!(arg.get_id().as_str(), "help" | "version"))
        .filter(|arg| !arg.is_positional())
        .filter(|arg| arg.get_env().is_none())
        .map(|arg| arg.get_long().unwrap_or(arg.get_id().as_str()).to_string())
        .collect()
}

/// The value parser of every boolean setting of both binaries, so they all
/// read alike: `true`/`false`, `1`/`0`, `yes`/`no`, `on`/`off`, any case.
/// Declared with `num_args = 0..=1, default_missing_value = "true",
/// require_equals = true, action = ArgAction::Set`, a boolean flag is
/// `--flag` (true) or `--flag=false`, and its variable `VAR=true|false|1|0|yes|no`.
/// `require_equals` keeps `--flag false` from silently reading `false` as a
/// positional argument: the binary names the flag and the `=` form instead.
pub fn parse_bool(value: &str) -> Result<bool, String> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(format!(
            "expected true or false (or 1/0, yes/no, on/off), found {value:?}"
        )),
    }
}

/// Rewrites a clap error so that it names the environment variable behind
/// the bad value (clap itself only names the flag, but in a pod nobody
/// passes flags). The process's own arguments decide which name to use: see
/// [`explain_clap_error_in`].
pub fn explain_clap_error(error: &clap::Error, command: &clap::Command) -> String {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    explain_clap_error_in(error, command, &args)
}

/// [`explain_clap_error`] for the command line `args`: a bad value typed as
/// a flag (`--response-cache=maybe`) is reported under the flag the user
/// typed; one from the environment (or a `CONFIG_PATH` key, which has the
/// variable's name) under the variable.
pub fn explain_clap_error_in(
    error: &clap::Error,
    command: &clap::Command,
    args: &[std::ffi::OsString],
) -> String {
    use clap::error::ContextKind;
    let rendered = error.render().to_string();
    let Some(invalid_arg) = error.get(ContextKind::InvalidArg).map(|v| v.to_string()) else {
        return rendered;
    };
    let long = invalid_arg
        .trim_start_matches("--")
        .split([' ', '=', '<', '['])
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
    let short = arg.get_short();
    let typed = args.iter().skip(1).any(|a| {
        let a = a.to_string_lossy();
        a == format!("--{long}")
            || a.starts_with(&format!("--{long}="))
            || short.is_some_and(|c| !a.starts_with("--") && a.starts_with(&format!("-{c}")))
    });
    let reason = std::error::Error::source(error)
        .map(|s| s.to_string())
        .or_else(|| {
            error
                .get(ContextKind::ValidValue)
                .map(|v| format!("expected one of: {v}"))
        })
        .unwrap_or_else(|| rendered.lines().next().unwrap_or_default().to_string());
    if typed {
        if arg.is_hide_env_values_set() {
            format!("--{long} is invalid: {reason}")
        } else {
            format!("--{long}={value:?} is invalid: {reason}")
        }
    } else if arg.is_hide_env_values_set() {
        format!("{env} (--{long}) is invalid: {reason}")
    } else {
        format!("{env}={value:?} (--{long}) is invalid: {reason}")
    }
}

#[cfg(test)]
mod tests {
    use clap::{Arg, Command};

    #[test]
    fn errors_name_the_flag_typed_or_the_variable() {
        let command = || {
            Command::new("x").arg(
                Arg::new("jobs")
                    .long("jobs")
                    .short('j')
                    .env("X_TEST_JOBS_UNSET")
                    .value_parser(clap::value_parser!(u32)),
            )
        };
        for typed in [
            &["x", "--jobs=z"][..],
            &["x", "-j", "z"][..],
            &["x", "--jobs", "z"][..],
        ] {
            let error = command().try_get_matches_from(typed).unwrap_err();
            let args: Vec<std::ffi::OsString> = typed.iter().map(Into::into).collect();
            let message = super::explain_clap_error_in(&error, &command(), &args);
            assert!(
                message.starts_with("--jobs=\"z\" is invalid"),
                "{typed:?}: {message}"
            );
        }
    }

    #[test]
    fn booleans_read_alike() {
        for yes in ["true", "TRUE", "1", "yes", "On", " true "] {
            assert_eq!(super::parse_bool(yes), Ok(true), "{yes}");
        }
        for no in ["false", "0", "no", "OFF"] {
            assert_eq!(super::parse_bool(no), Ok(false), "{no}");
        }
        for bad in ["", "maybe", "2", "y"] {
            assert!(super::parse_bool(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn names_the_flags_without_env() {
        let command = Command::new("x")
            .arg(Arg::new("a").long("alpha").env("ALPHA"))
            .arg(Arg::new("b").long("beta"))
            .arg(Arg::new("c"));
        assert_eq!(super::flags_without_env(&command), ["beta"]);
        let with_all = Command::new("x").arg(Arg::new("a").long("alpha").env("ALPHA"));
        assert!(super::flags_without_env(&with_all).is_empty());
    }
}
