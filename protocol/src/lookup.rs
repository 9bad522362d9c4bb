//! Searching V2 for a caller's record and creating one for an unknown caller: the limits both ends
//! check, so the widget can say what is wrong before sending and the relay refuses the same.
//!
//! The lengths are the relay's own choices: V2 publishes a maximum of 40 for phone fields only;
//! that its name fields take 40 characters is inferred (the same width as `firstLineName` in
//! SAP's samples), and a longer one would be refused by V2 anyway with a less helpful message.

use crate::ws::{NewRecordFields, RecordKind};

/// The shortest search: one letter would list half the tenant.
pub const MIN_QUERY_CHARS: usize = 2;
/// The longest search.
pub const MAX_QUERY_CHARS: usize = 80;
/// The most records one search returns per kind (accounts, contacts, individual customers).
pub const RESULTS_PER_KIND: usize = 10;
/// The longest name field of a new record (inferred, see the module documentation).
pub const MAX_NAME_CHARS: usize = 40;
/// The longest record id accepted (V2 ids are 36-character UUIDs).
pub const MAX_ID_CHARS: usize = 64;

/// Why a search or a new record was refused before V2 was asked: the field and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FieldProblem {
    /// A required field is empty.
    Required(&'static str),
    /// A field is longer than its limit.
    TooLong { field: &'static str, max: usize },
    /// A search shorter than [`MIN_QUERY_CHARS`].
    TooShort { field: &'static str, min: usize },
    /// A field holds control characters.
    ControlCharacters(&'static str),
    /// A field that does not belong to this kind of record (a contact's account on an account).
    NotForKind { field: &'static str },
}

impl FieldProblem {
    /// The field the problem is about, as the widget's form names it.
    pub fn field(&self) -> &'static str {
        match self {
            FieldProblem::Required(field)
            | FieldProblem::TooLong { field, .. }
            | FieldProblem::TooShort { field, .. }
            | FieldProblem::ControlCharacters(field)
            | FieldProblem::NotForKind { field } => field,
        }
    }
}

impl std::fmt::Display for FieldProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FieldProblem::Required(field) => write!(f, "{field} is required"),
            FieldProblem::TooLong { field, max } => {
                write!(f, "{field} is limited to {max} characters")
            }
            FieldProblem::TooShort { field, min } => {
                write!(f, "{field} needs at least {min} characters")
            }
            FieldProblem::ControlCharacters(field) => {
                write!(f, "{field} must not contain control characters")
            }
            FieldProblem::NotForKind { field } => {
                write!(f, "{field} does not belong to this kind of record")
            }
        }
    }
}

impl std::error::Error for FieldProblem {}

fn check_text(
    field: &'static str,
    value: &str,
    required: bool,
    max: usize,
) -> Result<(), FieldProblem> {
    let trimmed = value.trim();
    if required && trimmed.is_empty() {
        return Err(FieldProblem::Required(field));
    }
    if trimmed.chars().count() > max {
        return Err(FieldProblem::TooLong { field, max });
    }
    if trimmed.chars().any(char::is_control) {
        return Err(FieldProblem::ControlCharacters(field));
    }
    Ok(())
}

/// The search text, trimmed, if it may be sent: [`MIN_QUERY_CHARS`] to [`MAX_QUERY_CHARS`]
/// characters without control characters.
pub fn check_query(query: &str) -> Result<&str, FieldProblem> {
    check_text("query", query, true, MAX_QUERY_CHARS)?;
    let trimmed = query.trim();
    if trimmed.chars().count() < MIN_QUERY_CHARS {
        return Err(FieldProblem::TooShort {
            field: "query",
            min: MIN_QUERY_CHARS,
        });
    }
    Ok(trimmed)
}

/// Whether `fields` make a record of `kind`: the fields V2 requires (an account's name, a
/// person's family name) present, none too long, and nothing of another kind.
pub fn check_new_record(kind: RecordKind, fields: &NewRecordFields) -> Result<(), FieldProblem> {
    match kind {
        RecordKind::Account => {
            check_text("name", &fields.name, true, MAX_NAME_CHARS)?;
            for (field, value) in [
                ("given_name", &fields.given_name),
                ("family_name", &fields.family_name),
            ] {
                if !value.trim().is_empty() {
                    return Err(FieldProblem::NotForKind { field });
                }
            }
            if fields.account_id.is_some() {
                return Err(FieldProblem::NotForKind {
                    field: "account_id",
                });
            }
        }
        person => {
            check_text("given_name", &fields.given_name, false, MAX_NAME_CHARS)?;
            check_text("family_name", &fields.family_name, true, MAX_NAME_CHARS)?;
            if !fields.name.trim().is_empty() {
                return Err(FieldProblem::NotForKind { field: "name" });
            }
            match (&fields.account_id, person) {
                (Some(id), RecordKind::Contact) => {
                    check_text("account_id", id, true, MAX_ID_CHARS)?
                }
                (Some(_), _) => {
                    return Err(FieldProblem::NotForKind {
                        field: "account_id",
                    });
                }
                (None, _) => {}
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn person(given: &str, family: &str) -> NewRecordFields {
        NewRecordFields {
            given_name: given.into(),
            family_name: family.into(),
            ..NewRecordFields::default()
        }
    }

    #[test]
    fn a_query_is_trimmed_and_held_to_its_lengths() {
        assert_eq!(check_query("  Anna "), Ok("Anna"));
        assert_eq!(
            check_query(" a "),
            Err(FieldProblem::TooShort {
                field: "query",
                min: MIN_QUERY_CHARS
            })
        );
        assert_eq!(check_query("   "), Err(FieldProblem::Required("query")));
        assert!(matches!(
            check_query(&"x".repeat(MAX_QUERY_CHARS + 1)),
            Err(FieldProblem::TooLong { .. })
        ));
        assert_eq!(
            check_query("An\u{0}na"),
            Err(FieldProblem::ControlCharacters("query"))
        );
    }

    #[test]
    fn each_kind_needs_its_own_fields_and_no_others() {
        assert_eq!(
            check_new_record(RecordKind::Contact, &person("Anna", "Muster")),
            Ok(())
        );
        assert_eq!(
            check_new_record(RecordKind::Contact, &person("Anna", " ")),
            Err(FieldProblem::Required("family_name"))
        );
        assert_eq!(
            check_new_record(RecordKind::IndividualCustomer, &person("", "Muster")),
            Ok(())
        );
        let account = NewRecordFields {
            name: "Acme AG".into(),
            ..NewRecordFields::default()
        };
        assert_eq!(check_new_record(RecordKind::Account, &account), Ok(()));
        assert_eq!(
            check_new_record(RecordKind::Account, &person("Anna", "Muster")),
            Err(FieldProblem::Required("name"))
        );
        let mut with_account = person("Anna", "Muster");
        with_account.account_id = Some("a-1".into());
        assert_eq!(check_new_record(RecordKind::Contact, &with_account), Ok(()));
        assert_eq!(
            check_new_record(RecordKind::IndividualCustomer, &with_account),
            Err(FieldProblem::NotForKind {
                field: "account_id"
            })
        );
        let long = person("Anna", &"M".repeat(MAX_NAME_CHARS + 1));
        let problem = check_new_record(RecordKind::Contact, &long).expect_err("too long");
        assert_eq!(problem.field(), "family_name");
        assert_eq!(
            problem.to_string(),
            "family_name is limited to 40 characters"
        );
    }
}
