//! Command-line conventions shared by both binaries.

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
