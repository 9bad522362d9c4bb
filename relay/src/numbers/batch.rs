//! Normalizing a stream of numbers, one per line, in constant memory: the engine of
//! `cti-relay numbers normalize`, for checking a data export before going live.

use std::io::{BufRead, Write};

use super::normalize::{DefaultRegion, to_e164};

/// Counts of one run, for the summary on stderr.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct BatchStats {
    pub lines: u64,
    pub invalid: u64,
}

/// Reads lines from `input` and writes `input<TAB>+E164` or `input<TAB>invalid:<reason>`.
/// Bytes that are not UTF-8 are replaced, never fatal; line endings (`\n`, `\r\n`) are dropped.
pub fn normalize_lines(
    mut input: impl BufRead,
    mut output: impl Write,
    region: &DefaultRegion,
) -> std::io::Result<BatchStats> {
    let mut stats = BatchStats::default();
    let mut line = Vec::new();
    loop {
        line.clear();
        if input.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        while matches!(line.last(), Some(b'\n' | b'\r')) {
            line.pop();
        }
        let text = String::from_utf8_lossy(&line);
        stats.lines += 1;
        // Tabs inside the input would break the two-column output.
        let shown = text.replace('\t', " ");
        match to_e164(&text, region) {
            Ok(e164) => writeln!(output, "{shown}\t{e164}")?,
            Err(e) => {
                stats.invalid += 1;
                writeln!(output, "{shown}\tinvalid:{}", e.code())?;
            }
        }
    }
    output.flush()?;
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_one_answer_per_line() {
        let input = b"044 123 45 67\r\n+33 1 23 45 67 89\nhello\n\n\xff\xfe\n12";
        let mut out = Vec::new();
        let ch = DefaultRegion::parse("CH").expect("region");
        let stats = normalize_lines(&input[..], &mut out, &ch).expect("runs");
        let text = String::from_utf8(out).expect("utf-8");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            vec![
                "044 123 45 67\t+41441234567",
                "+33 1 23 45 67 89\t+33123456789",
                "hello\tinvalid:not_a_number",
                "\tinvalid:not_a_number",
                "\u{fffd}\u{fffd}\tinvalid:not_a_number",
                "12\tinvalid:not_valid",
            ]
        );
        assert_eq!(
            stats,
            BatchStats {
                lines: 6,
                invalid: 4
            }
        );
    }
}
