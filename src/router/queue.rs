//! A session's outbound queue: a FIFO bounded both in items and in bytes,
//! that holds no memory while it is empty.
//!
//! The byte bound is what keeps memory in check: with only a count, a slow
//! reader sent large stanzas holds count × size (2,048 stanzas of 100 KB
//! each is 200 MB for one session). An empty queue takes any one item, so a
//! stanza larger than the bound still gets through to a reader that keeps up.
//!
//! tokio's mpsc channel allocates a cache-padded header and a first block of
//! 32 slots when it is created, about 1 KiB per session whether anything is
//! ever queued or not. An idle session almost never has a stanza waiting, so
//! this queue allocates its slots on the first push and releases them as soon
//! as it has drained. The interface is the subset of tokio's that sessions
//! use, with tokio's error types.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::Notify;
pub use tokio::sync::mpsc::error::{TryRecvError, TrySendError};

/// What an item costs in the queue's byte bound.
pub trait Weigh {
    /// Its size in bytes.
    fn weight(&self) -> usize;
}

struct Shared<T> {
    state: Mutex<State<T>>,
    /// Wakes the receiver; a notification sent while it is not waiting is
    /// kept as a permit, so none is lost between its check and its wait.
    ready: Notify,
    capacity: usize,
    max_bytes: usize,
}

struct State<T> {
    items: VecDeque<T>,
    /// The weight of what is queued.
    bytes: usize,
    senders: usize,
    /// The receiver closed the queue or went away: sends fail.
    closed: bool,
}

impl<T> Shared<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // Nothing panics while holding the lock; if something did, the
        // queue's contents are still consistent.
        match self.state.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}

impl<T> std::fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.shared.lock();
        f.debug_struct("Sender")
            .field("queued", &state.items.len())
            .field("bytes", &state.bytes)
            .field("capacity", &self.shared.capacity)
            .field("max_bytes", &self.shared.max_bytes)
            .finish()
    }
}

/// The sending side; clones share the queue.
pub struct Sender<T> {
    shared: Arc<Shared<T>>,
}

/// The receiving side (one per queue).
pub struct Receiver<T> {
    shared: Arc<Shared<T>>,
}

/// A queue that holds at most `capacity` items weighing `max_bytes` in all
/// (or a single item of any weight).
pub fn channel<T: Weigh>(capacity: usize, max_bytes: usize) -> (Sender<T>, Receiver<T>) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            items: VecDeque::new(),
            bytes: 0,
            senders: 1,
            closed: false,
        }),
        ready: Notify::new(),
        capacity: capacity.max(1),
        max_bytes,
    });
    (
        Sender {
            shared: shared.clone(),
        },
        Receiver { shared },
    )
}

impl<T: Weigh> Sender<T> {
    /// Queue `value` unless the queue is full (in items or bytes) or closed.
    pub fn try_send(&self, value: T) -> Result<(), TrySendError<T>> {
        let weight = value.weight();
        let mut state = self.shared.lock();
        if state.closed {
            return Err(TrySendError::Closed(value));
        }
        let too_heavy =
            !state.items.is_empty() && state.bytes.saturating_add(weight) > self.shared.max_bytes;
        if state.items.len() >= self.shared.capacity || too_heavy {
            return Err(TrySendError::Full(value));
        }
        state.bytes = state.bytes.saturating_add(weight);
        state.items.push_back(value);
        drop(state);
        self.shared.ready.notify_one();
        Ok(())
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.shared.lock().senders += 1;
        Sender {
            shared: self.shared.clone(),
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let last = {
            let mut state = self.shared.lock();
            state.senders -= 1;
            state.senders == 0
        };
        if last {
            // The receiver learns that nothing more can come.
            self.shared.ready.notify_one();
        }
    }
}

impl<T: Weigh> Receiver<T> {
    fn pop(state: &mut State<T>) -> Option<T> {
        let value = state.items.pop_front();
        if let Some(v) = &value {
            state.bytes = state.bytes.saturating_sub(v.weight());
        }
        if state.items.is_empty() && state.items.capacity() > 0 {
            state.items = VecDeque::new();
            state.bytes = 0;
        }
        value
    }

    /// The next item, or None once the queue is empty and no sender is left
    /// (or it was closed). Cancel-safe.
    pub async fn recv(&mut self) -> Option<T> {
        loop {
            {
                let mut state = self.shared.lock();
                if let Some(value) = Self::pop(&mut state) {
                    return Some(value);
                }
                if state.senders == 0 || state.closed {
                    return None;
                }
            }
            self.shared.ready.notified().await;
        }
    }

    /// The next item if one is waiting.
    pub fn try_recv(&mut self) -> Result<T, TryRecvError> {
        let mut state = self.shared.lock();
        match Self::pop(&mut state) {
            Some(value) => Ok(value),
            None if state.senders == 0 || state.closed => Err(TryRecvError::Disconnected),
            None => Err(TryRecvError::Empty),
        }
    }

    /// The weight of what is queued.
    pub fn bytes(&self) -> usize {
        self.shared.lock().bytes
    }
}

impl<T> Receiver<T> {
    /// Refuse further sends; what is queued can still be received.
    pub fn close(&mut self) {
        self.shared.lock().closed = true;
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        self.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    impl Weigh for i32 {
        fn weight(&self) -> usize {
            1
        }
    }

    impl Weigh for &str {
        fn weight(&self) -> usize {
            self.len()
        }
    }

    impl Weigh for Vec<u8> {
        fn weight(&self) -> usize {
            self.len()
        }
    }

    #[tokio::test]
    async fn the_byte_bound_holds_but_one_item_always_fits() {
        let (tx, mut rx) = channel(100, 10);
        // Larger than the bound, into an empty queue: accepted.
        tx.try_send(vec![0u8; 50]).expect("one item always fits");
        assert!(matches!(tx.try_send(vec![1u8]), Err(TrySendError::Full(_))));
        assert_eq!(rx.bytes(), 50);
        assert_eq!(rx.try_recv().map(|v| v.len()), Ok(50));
        assert_eq!(rx.bytes(), 0);
        for _ in 0..2 {
            tx.try_send(vec![0u8; 4]).expect("room");
        }
        assert!(matches!(
            tx.try_send(vec![0u8; 3]),
            Err(TrySendError::Full(_))
        ));
        tx.try_send(vec![0u8; 2]).expect("exactly the bound");
        assert_eq!(rx.bytes(), 10);
        rx.recv().await.expect("item");
        assert_eq!(rx.bytes(), 6);
        tx.try_send(vec![0u8; 4]).expect("room again");
    }

    #[tokio::test]
    async fn items_come_out_in_order_and_the_bound_holds() {
        let (tx, mut rx) = channel(2, usize::MAX);
        tx.try_send(1).expect("room");
        tx.try_send(2).expect("room");
        assert!(matches!(tx.try_send(3), Err(TrySendError::Full(3))));
        assert_eq!(rx.recv().await, Some(1));
        tx.try_send(3).expect("room again");
        assert_eq!(rx.try_recv(), Ok(2));
        assert_eq!(rx.try_recv(), Ok(3));
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    }

    #[tokio::test]
    async fn a_waiting_receiver_wakes_on_send_and_ends_with_the_last_sender() {
        let (tx, mut rx) = channel(4, usize::MAX);
        let tx2 = tx.clone();
        let waiter = tokio::spawn(async move {
            let first = rx.recv().await;
            let end = rx.recv().await;
            (first, end)
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        tx.try_send("x").expect("room");
        drop(tx);
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(tx2);
        let (first, end) = tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("woke up")
            .expect("no panic");
        assert_eq!(first, Some("x"));
        assert_eq!(end, None);
    }

    #[tokio::test]
    async fn closing_refuses_sends_but_keeps_what_is_queued() {
        let (tx, mut rx) = channel(4, usize::MAX);
        tx.try_send(1).expect("room");
        rx.close();
        assert!(matches!(tx.try_send(2), Err(TrySendError::Closed(2))));
        assert_eq!(rx.try_recv(), Ok(1));
        assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
        drop(rx);
        assert!(matches!(tx.try_send(3), Err(TrySendError::Closed(3))));
    }

    #[tokio::test]
    async fn a_cancelled_wait_loses_nothing() {
        let (tx, mut rx) = channel(4, usize::MAX);
        // A receive abandoned while waiting (as in a select!)...
        let _ = tokio::time::timeout(Duration::from_millis(10), rx.recv()).await;
        tx.try_send(7).expect("room");
        // ...does not swallow the next item or its wake-up.
        let got = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await;
        assert_eq!(got, Ok(Some(7)));
    }
}
