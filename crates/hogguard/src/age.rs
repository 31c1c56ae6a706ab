//! Ages and periods as people write them in configuration and flags: `30d`, `12w`, `36h`.

use anyhow::{Result, bail};

/// Seconds in the period `text`: a whole number followed by `h` (hours), `d` (days) or `w`
/// (weeks).
pub(crate) fn parse(text: &str) -> Result<u64> {
    let text = text.trim();
    let Some(unit) = text.chars().last() else {
        bail!("an empty period; write it like 30d, 12w or 36h");
    };
    let seconds_per_unit = match unit {
        'h' => 3_600,
        'd' => 86_400,
        'w' => 7 * 86_400,
        _ => bail!("`{text}` is not a period; write it like 30d, 12w or 36h"),
    };
    let count: u64 = text[..text.len() - 1]
        .parse()
        .map_err(|_| anyhow::anyhow!("`{text}` is not a period; write it like 30d, 12w or 36h"))?;
    count
        .checked_mul(seconds_per_unit)
        .ok_or_else(|| anyhow::anyhow!("`{text}` is too long a period"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_hours_days_and_weeks() {
        assert_eq!(parse("36h").unwrap(), 36 * 3600);
        assert_eq!(parse("30d").unwrap(), 30 * 86_400);
        assert_eq!(parse(" 2w ").unwrap(), 14 * 86_400);
        for bad in ["", "d", "30", "30m", "-1d", "1.5d", "99999999999999999999d"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
