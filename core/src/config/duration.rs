//! Durations as people write them on the command line and in settings (`--wait 30s`,
//! `--lock-timeout 10m`): `500ms`, `30s`, `5m`, `1h30m`, or a plain number of seconds.
//!
//! Apart from the URL and the settings code because it shares nothing with either: clap's
//! value parsers call it directly, and errors must say what the accepted forms are.

use crate::error::{Error, Result};
use std::time::Duration;

/// Parses a duration: `500ms`, `30s`, `5m`, `1h`, `1h30m`, or a plain number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration> {
    let t = text.trim();
    let bad = || {
        Error::usage(format!("'{text}' is not a duration"))
            .with_hint("write it like 30s, 5m, 1h30m, 500ms, or a number of seconds")
    };
    if t.is_empty() {
        return Err(bad());
    }
    if let Ok(secs) = t.parse::<f64>() {
        return if secs >= 0.0 && secs.is_finite() {
            Ok(Duration::from_secs_f64(secs))
        } else {
            Err(bad())
        };
    }
    let mut total = Duration::ZERO;
    let mut rest = t;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        if digits == 0 {
            return Err(bad());
        }
        let n: f64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let secs = match unit {
            "ms" => n / 1000.0,
            "s" | "sec" => n,
            "m" | "min" => n * 60.0,
            "h" => n * 3600.0,
            _ => return Err(bad()),
        };
        total += Duration::from_secs_f64(secs);
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    #[test]
    fn durations_parse_in_common_forms() {
        use std::time::Duration;
        assert_eq!(
            super::parse_duration("30s").unwrap(),
            Duration::from_secs(30)
        );
        assert_eq!(
            super::parse_duration("5m").unwrap(),
            Duration::from_secs(300)
        );
        assert_eq!(
            super::parse_duration("1h30m").unwrap(),
            Duration::from_secs(5400)
        );
        assert_eq!(
            super::parse_duration("500ms").unwrap(),
            Duration::from_millis(500)
        );
        assert_eq!(
            super::parse_duration("12").unwrap(),
            Duration::from_secs(12)
        );
        assert!(super::parse_duration("soon").is_err());
        assert!(super::parse_duration("5 parsecs").is_err());
    }
}
