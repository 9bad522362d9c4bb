//! The variables `cti-sim --help` lists: the README's simulator table, compiled in, so the help
//! and the docs are one text (a test keeps every variable the simulator reads in that table).

const README: &str = include_str!("../../README.md");

/// The header row of the README's simulator table.
const TABLE_HEADER: &str = "| simulator variable | default | meaning |";

/// Each variable with what it does and its default, for a terminal.
pub fn environment_help() -> String {
    let mut out = String::from("Environment variables:\n");
    let rows = README
        .lines()
        .skip_while(|line| line.trim() != TABLE_HEADER)
        .skip(2)
        .take_while(|line| line.starts_with('|'));
    for row in rows {
        let cells: Vec<String> = row
            .trim()
            .trim_matches('|')
            .split(" | ")
            .map(|cell| cell.trim().replace('`', ""))
            .collect();
        if let [name, default, meaning] = cells.as_slice() {
            out.push_str(&format!("\n  {name}\n"));
            let text = match default.as_str() {
                "—" => meaning.clone(),
                default => format!("{meaning} [default: {default}]"),
            };
            // Wrapped at about 78 columns.
            let mut line = String::new();
            for word in text.split_whitespace() {
                if !line.is_empty() && line.len() + word.len() >= 72 {
                    out.push_str(&format!("      {line}\n"));
                    line.clear();
                }
                if !line.is_empty() {
                    line.push(' ');
                }
                line.push_str(word);
            }
            out.push_str(&format!("      {line}\n"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variable_the_simulator_reads_is_in_the_help() {
        let help = environment_help();
        let sources = [include_str!("config.rs"), include_str!("prosody.rs")];
        let mut read = Vec::new();
        for source in sources {
            for (i, _) in source.match_indices("\"SIM_") {
                let name: String = source[i + 1..]
                    .chars()
                    .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
                    .collect();
                if !read.contains(&name) {
                    read.push(name);
                }
            }
        }
        assert!(read.len() > 20, "the simulator reads {read:?}");
        let missing: Vec<&String> = read
            .iter()
            .filter(|var| {
                !help.lines().any(|l| {
                    l.starts_with("  ")
                        && !l.starts_with("   ")
                        && l.split(", ").any(|n| n.trim() == var.as_str())
                })
            })
            .collect();
        assert!(
            missing.is_empty(),
            "not in the README's simulator table: {missing:?}"
        );
        assert!(
            help.contains("\n  SIM_LISTEN\n      address to listen on [default: 127.0.0.1:8090]\n"),
            "{help}"
        );
    }
}
