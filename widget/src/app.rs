//! The root component: starts the controller when mounted, stops it when unmounted, and draws
//! whatever view it publishes, in the language this tab chose ([`i18n::from_page`]).

use std::cell::RefCell;
use std::rc::Rc;

use yew::prelude::*;

use crate::controller::Controller;
use crate::i18n::{self, I18n, Lang};
use crate::ui::{UiAction, ViewModel, WidgetView};

#[component]
pub fn App() -> Html {
    let view = use_state(|| Rc::new(ViewModel::default()));
    let lang = use_state(i18n::from_page);
    // The page says which language it is in: screen readers pick their voice by it, and the
    // browser's tab title follows.
    use_effect_with(*lang, |lang| {
        if let Some(root) = gloo::utils::document().document_element() {
            let _ = root.set_attribute("lang", lang.code());
        }
        gloo::utils::document().set_title(&I18n::get(*lang).t("app-title"));
    });
    let controller: Rc<RefCell<Option<Controller>>> = use_mut_ref(|| None);
    {
        let view = view.clone();
        let controller = controller.clone();
        use_effect_with((), move |_| {
            let started = Controller::start(Callback::from(move |next| view.set(next)));
            *controller.borrow_mut() = Some(started);
            move || {
                let stopping = controller.borrow_mut().take();
                if let Some(stopping) = stopping {
                    stopping.stop();
                }
            }
        });
    }
    let on_action = {
        let controller = controller.clone();
        Callback::from(move |action: UiAction| {
            let running = controller.borrow().clone();
            if let Some(running) = running {
                running.act(action);
            }
        })
    };
    let on_language = {
        let lang = lang.clone();
        Callback::from(move |picked: Lang| {
            if !i18n::remember(picked) {
                gloo::console::warn!("the language pick holds for this page only: no storage");
            }
            lang.set(picked);
        })
    };
    html! { <WidgetView view={(*view).clone()} {on_action} lang={*lang} {on_language} /> }
}
