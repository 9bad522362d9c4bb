//! Placeholder for the simulated V2 REST API: just enough of `Tenant` for the other simulators
//! to compile against until the real module lands.

use std::sync::Arc;

use axum::Router;
use serde::Serialize;

use crate::{Sim, SimConfig};

#[derive(Debug, Clone, Serialize)]
pub struct PhoneOwner {
    pub kind: &'static str,
    pub id: String,
    pub display_id: String,
    pub name: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct SampleCaller {
    pub label: String,
    pub number: String,
}

#[derive(Debug)]
pub struct Tenant {
    phones: Vec<(String, PhoneOwner)>,
}

impl Tenant {
    pub fn new(_config: &SimConfig) -> Self {
        let owner = |kind, id: &str, display_id: &str, name: &str| PhoneOwner {
            kind,
            id: id.into(),
            display_id: display_id.into(),
            name: name.into(),
        };
        Tenant {
            phones: vec![
                (
                    "+41441234567".into(),
                    owner("contact", "c-1", "1001", "Anna Schmidt"),
                ),
                (
                    "+41449870000".into(),
                    owner("account", "a-1", "2001", "Acme AG"),
                ),
                (
                    "+41449870000".into(),
                    owner("contact", "c-2", "1002", "Ben Meier"),
                ),
            ],
        }
    }

    pub fn lookup_phone(&self, e164: &str) -> Vec<PhoneOwner> {
        self.phones
            .iter()
            .filter(|(number, _)| number == e164)
            .map(|(_, owner)| owner.clone())
            .collect()
    }

    pub fn sample_callers(&self) -> Vec<SampleCaller> {
        vec![
            SampleCaller {
                label: "Anna Schmidt".into(),
                number: "+41 44 123 45 67".into(),
            },
            SampleCaller {
                label: "Acme AG".into(),
                number: "+41441234567".into(),
            },
        ]
    }
}

pub fn routes() -> Router<Arc<Sim>> {
    Router::new()
}
