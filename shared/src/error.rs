//! Error display shared by both binaries.

/// An error and its sources on one line ("error sending request: connection
/// refused"), skipping a source already contained in its parent's message.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    #[test]
    fn joins_sources_once() {
        let inner = std::io::Error::other("connection refused");
        let outer = std::io::Error::other(Wrapper(inner));
        let text = super::error_chain(&outer);
        assert!(text.contains("connection refused"));
        assert_eq!(text.matches("connection refused").count(), 1, "{text}");
    }

    #[derive(Debug)]
    struct Wrapper(std::io::Error);
    impl std::fmt::Display for Wrapper {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("error sending request")
        }
    }
    impl std::error::Error for Wrapper {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }
}
