//! ISO 8601 durations as ARM writes them (`PT1M`, `PT30S`, `PT1H30M`).

use std::time::Duration;

/// Parses `PT[nH][nM][nS]` (and `P[n]D` days before the T).
pub fn parse_iso8601(text: &str) -> anyhow::Result<Duration> {
    let invalid = || anyhow::anyhow!("{text:?} is not an ISO 8601 duration such as PT1M");
    let rest = text.strip_prefix('P').ok_or_else(invalid)?;
    let (days, time) = match rest.split_once('T') {
        Some((days, time)) => (days, time),
        None => (rest, ""),
    };
    let mut seconds = 0u64;
    let mut add = |part: &str, units: &[(char, u64)]| -> anyhow::Result<()> {
        let mut number = String::new();
        for c in part.chars() {
            if c.is_ascii_digit() {
                number.push(c);
                continue;
            }
            let scale = units
                .iter()
                .find(|(unit, _)| *unit == c)
                .map(|(_, scale)| *scale)
                .ok_or_else(invalid)?;
            let n: u64 = number.parse().map_err(|_| invalid())?;
            seconds += n * scale;
            number.clear();
        }
        if number.is_empty() {
            Ok(())
        } else {
            Err(invalid())
        }
    };
    add(days, &[('D', 86_400)])?;
    add(time, &[('H', 3600), ('M', 60), ('S', 1)])?;
    if seconds == 0 && !text.contains('0') {
        return Err(invalid());
    }
    Ok(Duration::from_secs(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arm_durations() {
        assert_eq!(parse_iso8601("PT1M").ok(), Some(Duration::from_secs(60)));
        assert_eq!(
            parse_iso8601("PT1H30M5S").ok(),
            Some(Duration::from_secs(5405))
        );
        assert_eq!(parse_iso8601("P1D").ok(), Some(Duration::from_secs(86_400)));
        assert!(parse_iso8601("1M").is_err());
        assert!(parse_iso8601("PT").is_err());
    }
}
