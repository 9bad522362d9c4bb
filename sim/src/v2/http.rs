//! The simulated V2 API's routes: the record collections, the fault controls and the quirks.

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};

use super::crud::{create, list, read, remove, update};
use super::limits::{clear_fault, get_fault, get_quirks, set_fault, set_quirks};
use crate::Sim;

pub fn routes() -> Router<Arc<Sim>> {
    Router::new()
        .route(
            "/sap/c4c/api/v1/{service}/{collection}",
            get(list).post(create),
        )
        .route(
            "/sap/c4c/api/v1/{service}/{collection}/{id}",
            get(read).patch(update).delete(remove),
        )
        .route(
            "/sim/faults",
            post(set_fault).delete(clear_fault).get(get_fault),
        )
        .route("/sim/v2/quirks", post(set_quirks).get(get_quirks))
}
