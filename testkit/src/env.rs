//! [`Envs`]: the environment a test gives a binary, as an ordered list so
//! that a test can read back what it set and replace single variables.

/// An ordered set of environment variables; `set` replaces.
#[derive(Debug, Clone, Default)]
pub struct Envs(pub Vec<(String, String)>);

impl Envs {
    pub fn new() -> Envs {
        Envs(Vec::new())
    }

    pub fn set(mut self, key: &str, value: impl AsRef<str>) -> Envs {
        self.0.retain(|(k, _)| k != key);
        self.0.push((key.to_string(), value.as_ref().to_string()));
        self
    }

    pub fn remove(mut self, key: &str) -> Envs {
        self.0.retain(|(k, _)| k != key);
        self
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

impl std::ops::Deref for Envs {
    type Target = [(String, String)];
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}
