//! Every cross-process test, in one binary: the relay's HTTP and WebSocket contract against the
//! simulator, and the end-to-end flow in headless Chromium.

mod activities;
mod asterisk;
mod browser_flow;
mod chaos;
mod click_to_dial;
mod connectors;
mod dist;
mod durability;
mod finesse;
mod freeswitch;
mod genesys;
mod index_refresh;
mod instances;
mod limits;
mod live_lookup;
mod network_faults;
mod numbers_audit;
mod oauth_refresh;
mod phone_oracle;
mod pop_load;
mod push_load;
mod redis_index;
mod redis_push;
mod relay_api;
mod ringcentral;
mod saas;
mod shared_legs;
mod signatures;
mod sip;
mod tabs;
mod teams;
mod transfer_browsers;
mod v2_events_auth;
mod v2_paging;
mod webex;
