//! The simulator's routes, driven through its router: the V2 REST API, the PBX, the identity
//! provider and the host stand-in page; and the `cti-sim` command line.

mod cli;
mod pbx_idp_host;
mod v2_api;
mod v2_schema;
