//! The environment variables as `cti-relay serve --help` lists them.
//!
//! The list is the README's configuration table, compiled in: the README is where operators look
//! first, a unit test in [`super::env`] keeps every variable the relay reads in that table, so the
//! help and the docs cannot drift apart and nobody keeps a second list by hand.

const README: &str = include_str!("../../../README.md");

/// The header row the configuration table starts with.
const TABLE_HEADER: &str = "| variable | default | meaning |";

/// One entry per variable: its name, its default (when it has one) and what it does, wrapped for
/// an 80-column terminal.
pub fn environment_help() -> String {
    let mut out =
        String::from("Environment variables (none set: the demo against the simulator):\n");
    for (name, default, meaning) in table_rows(README, TABLE_HEADER) {
        out.push_str("\n  ");
        out.push_str(&name);
        out.push('\n');
        let mut text = meaning;
        if !default.is_empty() && default != "—" {
            text.push_str(&format!(" [default: {default}]"));
        }
        for line in wrap(&text, 72) {
            out.push_str("      ");
            out.push_str(&line);
            out.push('\n');
        }
    }
    out
}

/// The rows of the Markdown table under `header`, each as three plain-text cells.
fn table_rows(markdown: &str, header: &str) -> Vec<(String, String, String)> {
    markdown
        .lines()
        .skip_while(|line| line.trim() != header)
        .skip(2)
        .take_while(|line| line.starts_with('|'))
        .filter_map(|line| {
            let cells: Vec<String> = line
                .trim()
                .trim_matches('|')
                .split(" | ")
                .map(|cell| cell.trim().replace('`', ""))
                .collect();
            match cells.as_slice() {
                [name, default, meaning, ..] => {
                    Some((name.clone(), default.clone(), meaning.clone()))
                }
                _ => None,
            }
        })
        .collect()
}

fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = vec![String::new()];
    for word in text.split_whitespace() {
        let line = lines.last_mut().expect("never empty");
        if !line.is_empty() && line.len() + 1 + word.len() > width {
            lines.push(word.to_string());
        } else {
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_help_lists_every_row_of_the_readme_table() {
        let rows = table_rows(README, TABLE_HEADER);
        assert!(rows.len() > 40, "{} rows", rows.len());
        let help = environment_help();
        for (name, _, _) in &rows {
            assert!(help.contains(&format!("\n  {name}")), "{name} missing");
        }
        assert!(
            help.contains("  CTI_LISTEN\n      address to listen on [default: 127.0.0.1:8080]\n"),
            "{help}"
        );
        // Wrapped, apart from the names and single words longer than a line (a JSON example).
        assert!(
            help.lines()
                .filter(|l| l.trim().contains(' ') && !l.starts_with("  CTI_"))
                .all(|l| l.chars().count() <= 80),
            "{help}"
        );
    }

    #[test]
    fn cells_lose_their_markup_and_long_meanings_wrap() {
        let md = "x\n| variable | default | meaning |\n| --- | --- | --- |\n| `A` | `1` | one two three |\n| `B` | — | b |\n\nnot a row |";
        let rows = table_rows(md, "| variable | default | meaning |");
        assert_eq!(
            rows,
            vec![
                ("A".into(), "1".into(), "one two three".into()),
                ("B".into(), "—".into(), "b".into())
            ]
        );
        assert_eq!(wrap("one two three", 7), vec!["one two", "three"]);
    }
}
