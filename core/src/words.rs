//! The small pieces of text every layer's messages share: a duration, a plural's ending, a list
//! of heads. They are values with no I/O, so the database edge and the run loop write their
//! messages with them without importing the output layer.

use std::time::Duration;

/// "base (no revision applied)" for no heads, else the heads joined by ", ".
pub fn heads_text(heads: &[String]) -> String {
    if heads.is_empty() {
        "base (no revision applied)".into()
    } else {
        heads.join(", ")
    }
}

/// `12.3 ms` under a second, `1.25 s` above.
pub fn fmt_duration(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms < 1000.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{:.2} s", ms / 1000.0)
    }
}

/// `"es"` for more (or fewer) than one, `""` for one: `index` / `indexes`.
pub fn plural_es(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "es"
    }
}

/// `""` for one, `"s"` otherwise.
pub fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// 1234567 → "1,234,567".
pub fn group(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_heads_read_as_people_write_them() {
        assert_eq!(fmt_duration(Duration::from_micros(12_340)), "12.3 ms");
        assert_eq!(fmt_duration(Duration::from_millis(1_250)), "1.25 s");
        assert_eq!(heads_text(&[]), "base (no revision applied)");
        assert_eq!(heads_text(&["a".into(), "b".into()]), "a, b");
        assert_eq!(plural(1), "");
        assert_eq!(plural(0), "s");
        assert_eq!(plural_es(1), "");
        assert_eq!(plural_es(2), "es");
    }
}
