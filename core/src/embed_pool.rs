//! An embedding service's queue and instances. Every caller's inputs wait in one FIFO queue;
//! each instance takes as many as fit one batch whenever it is free, so inputs of concurrent
//! requests are encoded together.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use llama_cpp_2::token::LlamaToken;
use parking_lot::{Condvar, Mutex};
use tokio::sync::oneshot;

use crate::error::{Error, Result};

/// One input to embed.
pub(crate) struct EmbedItem {
    pub tokens: Vec<LlamaToken>,
    /// Its position in its request.
    pub index: usize,
    pub request: Arc<Gather>,
    /// The request's last input: once it is taken, the request no longer waits in the queue.
    pub last: bool,
}

/// A request's vectors in input order, once all are in (or why they are not).
pub(crate) type Vectors = oneshot::Receiver<Result<Vec<Vec<f32>>>>;

/// Collects one request's vectors as instances produce them; answers once all are in.
pub(crate) struct Gather {
    state: Mutex<GatherState>,
}

struct GatherState {
    vectors: Vec<Vec<f32>>,
    remaining: usize,
    done: Option<oneshot::Sender<Result<Vec<Vec<f32>>>>>,
}

impl Gather {
    pub(crate) fn new(inputs: usize) -> (Arc<Self>, Vectors) {
        let (tx, rx) = oneshot::channel();
        let gather = Gather {
            state: Mutex::new(GatherState {
                vectors: vec![Vec::new(); inputs],
                remaining: inputs,
                done: Some(tx),
            }),
        };
        (Arc::new(gather), rx)
    }

    /// The caller went away, or the request already failed: its inputs need no work.
    pub(crate) fn is_abandoned(&self) -> bool {
        self.state
            .lock()
            .done
            .as_ref()
            .is_none_or(oneshot::Sender::is_closed)
    }

    pub(crate) fn fill(&self, index: usize, vector: Vec<f32>) {
        let mut st = self.state.lock();
        st.vectors[index] = vector;
        st.remaining -= 1;
        if st.remaining == 0 {
            let vectors = std::mem::take(&mut st.vectors);
            if let Some(tx) = st.done.take() {
                let _ = tx.send(Ok(vectors));
            }
        }
    }

    pub(crate) fn fail(&self, error: Error) {
        if let Some(tx) = self.state.lock().done.take() {
            let _ = tx.send(Err(error));
        }
    }
}

/// Most inputs and tokens one batch may hold.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BatchLimits {
    pub tokens: usize,
    pub inputs: usize,
}

struct InstanceEntry {
    id: usize,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

struct PoolState {
    queue: VecDeque<EmbedItem>,
    /// Requests with inputs still in the queue (what `queue_size` bounds).
    waiting_requests: usize,
    /// Inputs taken by instances and not yet answered.
    in_flight: usize,
    instances: Vec<InstanceEntry>,
    /// Set by delete: nothing new is accepted.
    closing: bool,
}

pub(crate) struct EmbedPool {
    access_name: String,
    queue_size: usize,
    state: Mutex<PoolState>,
    /// Wakes instances waiting for inputs.
    work: Condvar,
    /// Signalled when inputs are answered, for drains.
    idle: Condvar,
}

impl EmbedPool {
    pub(crate) fn new(access_name: String, queue_size: usize) -> Self {
        EmbedPool {
            access_name,
            queue_size,
            state: Mutex::new(PoolState {
                queue: VecDeque::new(),
                waiting_requests: 0,
                in_flight: 0,
                instances: Vec::new(),
                closing: false,
            }),
            work: Condvar::new(),
            idle: Condvar::new(),
        }
    }

    pub(crate) fn add_instance(&self, id: usize, stop: Arc<AtomicBool>, thread: JoinHandle<()>) {
        self.state.lock().instances.push(InstanceEntry {
            id,
            stop,
            thread: Some(thread),
        });
    }

    pub(crate) fn instance_count(&self) -> usize {
        self.state.lock().instances.len()
    }

    /// Requests with inputs waiting in the queue, and inputs being encoded.
    pub(crate) fn load(&self) -> (usize, usize) {
        let st = self.state.lock();
        (st.waiting_requests, st.in_flight)
    }

    /// Queues a request's inputs, or refuses the request at once when the queue is full.
    pub(crate) fn submit(&self, items: Vec<EmbedItem>) -> Result<()> {
        let mut st = self.state.lock();
        if st.closing {
            return Err(Error::ServiceUnavailable {
                model: self.access_name.clone(),
                status: "deleting".into(),
            });
        }
        if st.waiting_requests >= self.queue_size {
            return Err(Error::Overloaded {
                model: self.access_name.clone(),
                queue_size: self.queue_size,
            });
        }
        st.waiting_requests += 1;
        st.queue.extend(items);
        self.work.notify_all();
        Ok(())
    }

    /// The next batch for an instance: waits for inputs, then takes them in order while they
    /// fit `limits`. `None` once the instance is told to stop.
    pub(crate) fn take(&self, stop: &AtomicBool, limits: BatchLimits) -> Option<Vec<EmbedItem>> {
        let mut st = self.state.lock();
        loop {
            if stop.load(Ordering::Relaxed) {
                return None;
            }
            let mut batch = Vec::new();
            let mut tokens = 0;
            while let Some(item) = st.queue.front() {
                let abandoned = item.request.is_abandoned();
                let oversized = item.tokens.len() > limits.tokens;
                let full =
                    batch.len() == limits.inputs || tokens + item.tokens.len() > limits.tokens;
                if full && !abandoned && !oversized {
                    break;
                }
                let item = st.queue.pop_front().expect("front exists");
                if item.last {
                    st.waiting_requests -= 1;
                }
                if abandoned {
                    continue;
                }
                if oversized {
                    // Requests are checked against the context first; an encoder batch larger
                    // than n_ubatch would abort the process, so never send one.
                    item.request.fail(Error::internal(format!(
                        "an input of {} tokens does not fit a batch of {}",
                        item.tokens.len(),
                        limits.tokens
                    )));
                    continue;
                }
                tokens += item.tokens.len();
                batch.push(item);
            }
            if !batch.is_empty() {
                st.in_flight += batch.len();
                return Some(batch);
            }
            self.idle.notify_all();
            self.work.wait(&mut st);
        }
    }

    /// Called by an instance once it answered `count` inputs.
    pub(crate) fn finished(&self, count: usize) {
        self.state.lock().in_flight -= count;
        self.idle.notify_all();
    }

    /// Takes the newest `count` instances out; each finishes its batch, then exits. Returns their
    /// threads to join.
    pub(crate) fn detach_instances(&self, count: usize) -> Vec<JoinHandle<()>> {
        let mut st = self.state.lock();
        let keep = st.instances.len().saturating_sub(count);
        let removed: Vec<_> = st.instances.drain(keep..).collect();
        for e in &removed {
            e.stop.store(true, Ordering::Relaxed);
        }
        self.work.notify_all();
        removed
            .into_iter()
            .filter_map(|mut e| e.thread.take())
            .collect()
    }

    /// Takes a dead instance out (its thread is ending on its own).
    pub(crate) fn remove_instance(&self, id: usize) {
        self.state.lock().instances.retain(|e| e.id != id);
    }

    /// Fails every queued input (no instance is left to serve them).
    pub(crate) fn fail_queued(&self, error: &Error) {
        let mut st = self.state.lock();
        for item in std::mem::take(&mut st.queue) {
            item.request.fail(error.clone());
        }
        st.waiting_requests = 0;
        self.idle.notify_all();
    }

    /// Stops accepting, waits until every queued and running input is answered, and stops the
    /// instances.
    pub(crate) fn drain_and_stop(&self) {
        let mut st = self.state.lock();
        st.closing = true;
        while (!st.queue.is_empty() && !st.instances.is_empty()) || st.in_flight > 0 {
            self.idle.wait(&mut st);
        }
        let instances: Vec<_> = st.instances.drain(..).collect();
        for e in &instances {
            e.stop.store(true, Ordering::Relaxed);
        }
        self.work.notify_all();
        drop(st);
        for mut e in instances {
            if let Some(t) = e.thread.take() {
                let _ = t.join();
            }
        }
    }
}
