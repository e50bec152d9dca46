//! Every exit code the binary uses, in one place. They follow sysexits.h,
//! so a supervisor or a script can tell "fix the configuration" (78) from
//! "the input is missing" (66) or "retry later" (69) without reading the
//! message.

use std::process::ExitCode;

use edgethumb::ConfigError;

/// Why a command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Everything it was asked to do was done.
    Done,
    /// It ran, but what it was asked failed: some of `warm`'s items
    /// (their lines are written for a retry), or a `bench` engine.
    Failed,
    /// A file to read is missing or unreadable (EX_NOINPUT).
    NoInput,
    /// A resource it needs is not available now, such as the address to
    /// listen on (EX_UNAVAILABLE).
    Unavailable,
    /// Our own failure: a runtime, client or image that could not be built
    /// (EX_SOFTWARE).
    Internal,
    /// A file to write cannot be created (EX_CANTCREAT).
    CannotWrite,
    /// The configuration or the arguments are wrong (EX_CONFIG).
    Config,
}

impl Exit {
    pub fn code(self) -> u8 {
        match self {
            Exit::Done => 0,
            Exit::Failed => 1,
            Exit::NoInput => 66,
            Exit::Unavailable => 69,
            Exit::Internal => 70,
            Exit::CannotWrite => 73,
            Exit::Config => 78,
        }
    }
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> Self {
        ExitCode::from(e.code())
    }
}

/// Every configuration error is the operator's to fix.
impl From<&ConfigError> for Exit {
    fn from(_: &ConfigError) -> Self {
        Exit::Config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_sysexits_and_distinct() {
        let all = [
            Exit::Done,
            Exit::Failed,
            Exit::NoInput,
            Exit::Unavailable,
            Exit::Internal,
            Exit::CannotWrite,
            Exit::Config,
        ];
        let mut codes: Vec<u8> = all.iter().map(|e| e.code()).collect();
        codes.dedup();
        assert_eq!(codes.len(), all.len());
        assert_eq!(Exit::Config.code(), 78);
        assert_eq!(Exit::NoInput.code(), 66);
    }
}
