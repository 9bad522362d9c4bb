//! The binary trunk builds into the page the relay serves at `/widget/`.

fn main() {
    cti_widget::run();
}
