//! Keyboard shortcuts for the moments a rep has no time to Tab: answer, hang up, hold and the
//! notes field.
//!
//! All are Alt+Shift with a letter, read from the key's position (`KeyboardEvent.code`), so they
//! work on any keyboard layout and on a Mac, where Option+Shift+letter types a symbol. The
//! letters avoid the browsers' own Alt+Shift shortcuts on Windows and Linux (Chrome and Edge
//! take Alt+Shift+A, +B, +I and +T; Firefox gives Alt+Shift+letter to a page's `accesskey`, which
//! the widget does not use). V2 publishes no list of its own shortcuts in the reference material
//! this widget follows; its Fiori shell's known ones (F6, Ctrl+Alt+Shift+P/S, Ctrl+F) are not
//! Alt+Shift+letter, so no clash is known, but that is inferred, not published. They act only
//! while the widget's frame has the focus: a key pressed in V2's own page never reaches it.
//!
//! A shortcut does what its button does, by pressing that button: a disabled button (a command
//! on its way, the relay out of reach) or a missing one (a provider without hold) makes the
//! shortcut do nothing, exactly as a click would.

use gloo::events::{EventListener, EventListenerOptions};
use wasm_bindgen::JsCast;
use yew::prelude::*;

/// What a shortcut does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shortcut {
    /// Answer the ringing call.
    Answer,
    /// Hang up the call, cancel the call being placed, or decline the ringing one.
    HangUp,
    /// Put the call on hold, or take it off.
    Hold,
    /// Move the focus to the call's notes.
    Notes,
}

impl Shortcut {
    pub const ALL: [Shortcut; 4] = [
        Shortcut::Answer,
        Shortcut::HangUp,
        Shortcut::Hold,
        Shortcut::Notes,
    ];

    /// The keys, as `aria-keyshortcuts` spells them (and as the buttons' titles show them).
    pub fn keys(self) -> &'static str {
        match self {
            Shortcut::Answer => "Alt+Shift+P",
            Shortcut::HangUp => "Alt+Shift+H",
            Shortcut::Hold => "Alt+Shift+O",
            Shortcut::Notes => "Alt+Shift+N",
        }
    }

    /// The key's position on the keyboard (`KeyboardEvent.code`).
    fn code(self) -> &'static str {
        match self {
            Shortcut::Answer => "KeyP",
            Shortcut::HangUp => "KeyH",
            Shortcut::Hold => "KeyO",
            Shortcut::Notes => "KeyN",
        }
    }

    /// The elements it acts on, in order of preference: the first enabled one in the panel (the
    /// live call comes first) is pressed or, for the notes, focused.
    fn targets(self) -> &'static str {
        match self {
            Shortcut::Answer => "[data-testid=btn-answer]",
            Shortcut::HangUp => "[data-testid=btn-hangup], [data-testid=btn-decline]",
            Shortcut::Hold => "[data-testid=btn-hold], [data-testid=btn-resume]",
            Shortcut::Notes => "[data-testid=notes]",
        }
    }

    /// The shortcut a key press means, if any: Alt and Shift, no Ctrl, no Meta.
    pub fn of(code: &str, alt: bool, shift: bool, ctrl: bool, meta: bool) -> Option<Shortcut> {
        if !(alt && shift) || ctrl || meta {
            return None;
        }
        Shortcut::ALL.into_iter().find(|s| s.code() == code)
    }

    /// The shortcut a command's button carries, by the button's test id.
    pub fn for_button(test_id: &str) -> Option<Shortcut> {
        match test_id {
            "btn-answer" => Some(Shortcut::Answer),
            "btn-hangup" | "btn-decline" => Some(Shortcut::HangUp),
            "btn-hold" | "btn-resume" => Some(Shortcut::Hold),
            _ => None,
        }
    }
}

/// Listens for the shortcuts on the widget's document while the component lives.
#[hook]
pub fn use_shortcuts() {
    use_effect_with((), |_| {
        let document = gloo::utils::document();
        let options = EventListenerOptions::enable_prevent_default();
        let listener =
            EventListener::new_with_options(&document, "keydown", options, move |event| {
                let Some(event) = event.dyn_ref::<web_sys::KeyboardEvent>() else {
                    return;
                };
                let Some(shortcut) = Shortcut::of(
                    &event.code(),
                    event.alt_key(),
                    event.shift_key(),
                    event.ctrl_key(),
                    event.meta_key(),
                ) else {
                    return;
                };
                if act(shortcut) {
                    event.prevent_default();
                }
            });
        move || drop(listener)
    });
}

/// Presses (or focuses) the first enabled target; whether there was one.
fn act(shortcut: Shortcut) -> bool {
    let Ok(found) = gloo::utils::document().query_selector_all(shortcut.targets()) else {
        return false;
    };
    for index in 0..found.length() {
        let Some(element) = found
            .item(index)
            .and_then(|node| node.dyn_into::<web_sys::HtmlElement>().ok())
        else {
            continue;
        };
        if element.has_attribute("disabled") {
            continue;
        }
        match shortcut {
            Shortcut::Notes => {
                let _ = element.focus();
            }
            _ => element.click(),
        }
        return true;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    #[wasm_bindgen_test]
    fn only_alt_and_shift_with_the_letter_is_a_shortcut() {
        assert_eq!(
            Shortcut::of("KeyP", true, true, false, false),
            Some(Shortcut::Answer)
        );
        assert_eq!(Shortcut::of("KeyP", true, false, false, false), None);
        assert_eq!(Shortcut::of("KeyP", true, true, true, false), None);
        assert_eq!(Shortcut::of("KeyP", true, true, false, true), None);
        assert_eq!(Shortcut::of("KeyA", true, true, false, false), None);
    }

    /// The keys the buttons announce are the keys the listener acts on.
    #[wasm_bindgen_test]
    fn each_shortcut_is_spelled_as_its_key() {
        for shortcut in Shortcut::ALL {
            let letter = shortcut.code().trim_start_matches("Key");
            assert_eq!(shortcut.keys(), format!("Alt+Shift+{letter}"));
            assert_eq!(
                Shortcut::of(shortcut.code(), true, true, false, false),
                Some(shortcut)
            );
        }
    }
}
