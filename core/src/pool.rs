//! A service's pool of instances and its scheduler: a bounded queue of waiting requests, each
//! handed to the instance with a free slot whose cached tokens share the longest prefix with
//! its prompt (so that prefix is reused instead of decoded again).

use std::collections::VecDeque;
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::thread::JoinHandle;

use llama_cpp_2::token::LlamaToken;
use parking_lot::{Condvar, Mutex};

use crate::error::{Error, Result};
use crate::instance::{Event, Job};

/// One live instance as the scheduler sees it.
struct InstanceEntry {
    id: usize,
    inbox: Sender<Job>,
    free_slots: usize,
    /// What each idle slot holds in its KV cache, as the instance last reported.
    idle_caches: Vec<Arc<[LlamaToken]>>,
    thread: Option<JoinHandle<()>>,
}

struct PoolState {
    queue: VecDeque<Job>,
    instances: Vec<InstanceEntry>,
    /// Requests handed to instances and not yet finished.
    in_flight: usize,
    /// Set by delete: nothing new is accepted.
    closing: bool,
}

pub(crate) struct Pool {
    access_name: String,
    queue_size: usize,
    state: Mutex<PoolState>,
    /// Signalled whenever a request finishes, for drains.
    idle: Condvar,
}

/// Tokens two sequences share from the start.
pub(crate) fn common_prefix(a: &[LlamaToken], b: &[LlamaToken]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

impl Pool {
    pub(crate) fn new(access_name: String, queue_size: usize) -> Self {
        Pool {
            access_name,
            queue_size,
            state: Mutex::new(PoolState {
                queue: VecDeque::new(),
                instances: Vec::new(),
                in_flight: 0,
                closing: false,
            }),
            idle: Condvar::new(),
        }
    }

    /// Adds a started instance with `slots` empty slots.
    pub(crate) fn add_instance(
        &self,
        id: usize,
        inbox: Sender<Job>,
        slots: usize,
        thread: JoinHandle<()>,
    ) {
        let mut st = self.state.lock();
        st.instances.push(InstanceEntry {
            id,
            inbox,
            free_slots: slots,
            idle_caches: Vec::new(),
            thread: Some(thread),
        });
        Self::dispatch(&mut st);
    }

    pub(crate) fn instance_count(&self) -> usize {
        self.state.lock().instances.len()
    }

    /// Requests waiting in the queue, and requests handed to instances and not yet finished.
    pub(crate) fn load(&self) -> (usize, usize) {
        let st = self.state.lock();
        (st.queue.len(), st.in_flight)
    }

    /// Queues a job, or refuses it at once when the queue is full.
    pub(crate) fn submit(&self, job: Job) -> Result<()> {
        let mut st = self.state.lock();
        if st.closing {
            return Err(Error::ServiceUnavailable {
                model: self.access_name.clone(),
                status: "deleting".into(),
            });
        }
        st.queue.push_back(job);
        Self::dispatch(&mut st);
        if st.queue.len() > self.queue_size {
            st.queue.pop_back();
            return Err(Error::Overloaded {
                model: self.access_name.clone(),
                queue_size: self.queue_size,
            });
        }
        Ok(())
    }

    /// Called by an instance when a slot became free; `idle_caches` is what its idle slots hold.
    pub(crate) fn release(&self, instance: usize, idle_caches: Vec<Arc<[LlamaToken]>>) {
        let mut st = self.state.lock();
        st.in_flight -= 1;
        if let Some(entry) = st.instances.iter_mut().find(|e| e.id == instance) {
            entry.free_slots += 1;
            entry.idle_caches = idle_caches;
        }
        Self::dispatch(&mut st);
        self.idle.notify_all();
    }

    /// Hands queued jobs to instances with free slots, best cached prefix first.
    fn dispatch(st: &mut PoolState) {
        while let Some(job) = st.queue.front() {
            if job.events.is_closed() {
                st.queue.pop_front();
                continue;
            }
            let best = st
                .instances
                .iter()
                .enumerate()
                .filter(|(_, e)| e.free_slots > 0)
                .max_by_key(|(_, e)| {
                    let reuse = e
                        .idle_caches
                        .iter()
                        .map(|c| common_prefix(c, &job.prompt))
                        .max()
                        .unwrap_or(0);
                    (reuse, e.free_slots)
                })
                .map(|(i, _)| i);
            let Some(i) = best else { break };
            let job = st.queue.pop_front().expect("front exists");
            let entry = &mut st.instances[i];
            match entry.inbox.send(job) {
                Ok(()) => {
                    entry.free_slots -= 1;
                    st.in_flight += 1;
                }
                Err(std::sync::mpsc::SendError(job)) => {
                    // The instance's thread is gone; take it out and try the job elsewhere.
                    let _ = job.events.send(Event::Failed(Error::internal(
                        "an instance of the service stopped",
                    )));
                    st.instances.remove(i);
                }
            }
        }
    }

    /// Takes the newest `count` instances out of scheduling; they finish what they hold, then
    /// exit. Returns their threads to join.
    pub(crate) fn detach_instances(&self, count: usize) -> Vec<JoinHandle<()>> {
        let mut st = self.state.lock();
        let keep = st.instances.len().saturating_sub(count);
        let removed: Vec<_> = st.instances.drain(keep..).collect();
        // Dropping each inbox sender tells the instance to exit once its slots are empty.
        removed
            .into_iter()
            .filter_map(|mut e| e.thread.take())
            .collect()
    }

    /// Takes a dead instance out of scheduling (its thread is ending on its own).
    pub(crate) fn remove_instance(&self, id: usize) {
        self.state.lock().instances.retain(|e| e.id != id);
    }

    /// Stops accepting, waits until every queued and running request has finished, and stops
    /// the instances.
    pub(crate) fn drain_and_stop(&self) {
        let mut st = self.state.lock();
        st.closing = true;
        while !st.queue.is_empty() || st.in_flight > 0 {
            self.idle.wait(&mut st);
        }
        let threads: Vec<_> = st
            .instances
            .drain(..)
            .filter_map(|mut e| e.thread.take())
            .collect();
        drop(st);
        for t in threads {
            let _ = t.join();
        }
    }
}
