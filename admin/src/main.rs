//! The binary trunk builds into the page the relay serves at `/admin/`.

fn main() {
    cti_admin::run();
}
