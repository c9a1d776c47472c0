//! Errors as people read them: one line, every cause once.
//!
//! An error type with a `#[source]` does not repeat its source's text in its own message;
//! the chain is printed here, causes joined by `: `. Some libraries do interpolate their
//! source, so a cause whose text the line already holds is left out.

use std::error::Error;

/// `error: its cause: the cause's cause`, each text once.
pub fn chain(error: &(dyn Error + 'static)) -> String {
    let mut line = error.to_string();
    let mut cause = error.source();
    while let Some(next) = cause {
        let text = next.to_string();
        if !text.is_empty() && !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        cause = next.source();
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("reading the config")]
    struct Outer(#[source] Middle);

    #[derive(Debug, thiserror::Error)]
    #[error("no file at /x: {0}")]
    struct Middle(#[source] std::io::Error);

    #[test]
    fn each_cause_is_said_once() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "not found");
        let error = Outer(Middle(io));
        // Middle interpolates its source; the io error is not repeated.
        assert_eq!(
            chain(&error),
            "reading the config: no file at /x: not found"
        );
    }

    #[test]
    fn a_lone_error_is_its_message() {
        let io = std::io::Error::other("broken pipe");
        assert_eq!(chain(&io), "broken pipe");
    }
}
