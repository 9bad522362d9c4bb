//! The root component: starts the controller when mounted, stops it when unmounted, and draws
//! whatever view it publishes.

use std::cell::RefCell;
use std::rc::Rc;

use yew::prelude::*;

use crate::controller::Controller;
use crate::ui::{UiAction, ViewModel, WidgetView};

#[component]
pub fn App() -> Html {
    let view = use_state(|| Rc::new(ViewModel::default()));
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
    html! { <WidgetView view={(*view).clone()} {on_action} /> }
}
