//! Follows a JavaScript `AbortSignal` from Rust, so a pending `Registry.call` can be dropped
//! (which cancels its generation within one decode step) when the signal aborts.

use std::future::pending;

use napi::bindgen_prelude::*;
use tokio::sync::watch;

/// `signal.addEventListener('abort', listener)`.
type AddEventListener<'env> =
    Function<'env, FnArgs<(&'env str, Function<'env, Unknown<'env>, ()>)>, Unknown<'env>>;

/// Whether the followed signal has aborted; awaited beside the call it cancels.
pub struct Aborted(watch::Receiver<bool>);

impl Aborted {
    /// Listens for `signal`'s `abort` event (none when `signal` is absent).
    pub fn follow(env: &Env, signal: Option<Object>) -> Result<Aborted> {
        let (aborted, receiver) = watch::channel(false);
        if let Some(signal) = signal {
            if signal.get_named_property::<bool>("aborted")? {
                aborted.send_replace(true);
            } else {
                let on_abort = env.create_function_from_closure("onAbort", move |_| {
                    aborted.send_replace(true);
                    Ok(())
                })?;
                let add: AddEventListener = signal.get_named_property("addEventListener")?;
                add.apply(signal, FnArgs::from(("abort", on_abort)))?;
            }
        }
        Ok(Aborted(receiver))
    }

    /// Resolves when the signal aborts; never, when there is none or it was collected.
    pub async fn wait(mut self) {
        if self.0.wait_for(|aborted| *aborted).await.is_err() {
            pending::<()>().await;
        }
    }
}
