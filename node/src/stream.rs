//! A sync stream's transport: the tasks that read and write its length-prefixed frames,
//! and the bounded queue between them and the core.
//!
//! Frames carry a 4-byte big-endian length, never more than the wire bound, and less
//! (`UNVERIFIED_FRAME_MAX`) until the peer has shown a valid certificate. A reader holds at
//! most `FRAMES_IN_FLIGHT` frames the core has not handled; the core never waits for a
//! writer: a peer that does not read gets a backlog, and past its bound the session goes.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::{AsyncReadExt, AsyncWriteExt};
use guihe_protocol::wire::MESSAGE_BYTES_MAX;
use tokio::sync::mpsc;

use crate::core::CoreMsg;

/// Frames waiting in one stream's outgoing queue before its session is slowed.
pub(crate) const STREAM_QUEUE: usize = 8;
/// Frames one stream may have read and not yet had handled by the core: a fast peer
/// cannot fill the core's queue, and each stream holds at most this many frames.
pub(crate) const FRAMES_IN_FLIGHT: usize = 2;
/// The longest frame read from a peer that has not yet shown a valid certificate. A
/// `Hello` is a few hundred bytes; everything else waits for it.
const UNVERIFIED_FRAME_MAX: usize = 64 * 1024;

/// Why a frame could not be queued for a peer.
pub(crate) enum Queue {
    /// The stream's writer is gone.
    Closed,
    /// The peer has not read what it was sent, past the backlog limit.
    Overflow,
}

/// A stream's outgoing frames: the writer's bounded queue, and behind it the frames the
/// queue had no room for. The core never waits for a peer: a peer that does not read gets
/// a backlog, and past the limit its session is closed.
pub(crate) struct Outbox {
    out: mpsc::Sender<Vec<u8>>,
    /// Oldest first, and their bytes.
    backlog: VecDeque<Vec<u8>>,
    backlog_bytes: usize,
    /// Set while there is a backlog: the writer tells the core when it makes room.
    wants_room: Arc<AtomicBool>,
}

impl Outbox {
    /// Queues a frame for the stream's writer without waiting: into the writer's queue if
    /// it has room and nothing is waiting before it, else into the backlog.
    pub(crate) fn send(&mut self, frame: Vec<u8>, backlog_max: usize) -> Result<(), Queue> {
        if self.backlog.is_empty() {
            match self.out.try_send(frame) {
                Ok(()) => return Ok(()),
                Err(mpsc::error::TrySendError::Closed(_)) => return Err(Queue::Closed),
                Err(mpsc::error::TrySendError::Full(frame)) => {
                    self.wants_room.store(true, Ordering::Release);
                    self.backlog_bytes += frame.len();
                    self.backlog.push_back(frame);
                }
            }
        } else {
            self.backlog_bytes += frame.len();
            self.backlog.push_back(frame);
        }
        if self.backlog_bytes > backlog_max {
            return Err(Queue::Overflow);
        }
        Ok(())
    }

    /// Moves what the writer's queue has room for from the backlog.
    pub(crate) fn drain(&mut self) -> Result<(), Queue> {
        while let Some(frame) = self.backlog.pop_front() {
            let len = frame.len();
            match self.out.try_send(frame) {
                Ok(()) => self.backlog_bytes -= len,
                Err(mpsc::error::TrySendError::Closed(_)) => return Err(Queue::Closed),
                Err(mpsc::error::TrySendError::Full(frame)) => {
                    self.backlog.push_front(frame);
                    self.wants_room.store(true, Ordering::Release);
                    return Ok(());
                }
            }
        }
        Ok(())
    }
}

/// The core's end of a sync stream: its outgoing queue, and what it shares with the
/// stream's reader.
pub(crate) struct StreamEnd {
    /// Frames to send.
    pub(crate) out: Outbox,
    /// The reader's credit: one permit per frame it may read ahead.
    credit: Arc<tokio::sync::Semaphore>,
    /// Set once the peer showed a valid certificate; until then frames are small.
    verified: Arc<AtomicBool>,
}

impl StreamEnd {
    /// Starts the stream's reader and writer on the runtime. Frames read come to the core
    /// as `CoreMsg::Frame`, the end of the stream as `CoreMsg::Closed`, each frame written
    /// as `CoreMsg::Sent`.
    pub(crate) fn spawn(
        id: u64,
        stream: libp2p::Stream,
        core: mpsc::Sender<CoreMsg>,
        runtime: &tokio::runtime::Handle,
    ) -> StreamEnd {
        let (out_tx, out_rx) = mpsc::channel(STREAM_QUEUE);
        let end = StreamEnd {
            out: Outbox {
                out: out_tx,
                backlog: VecDeque::new(),
                backlog_bytes: 0,
                wants_room: Arc::new(AtomicBool::new(false)),
            },
            credit: Arc::new(tokio::sync::Semaphore::new(FRAMES_IN_FLIGHT)),
            verified: Arc::new(AtomicBool::new(false)),
        };
        let (reader, writer) = stream.split();
        runtime.spawn(write(
            id,
            writer,
            out_rx,
            core.clone(),
            end.out.wants_room.clone(),
        ));
        runtime.spawn(read(
            id,
            reader,
            core,
            end.credit.clone(),
            end.verified.clone(),
        ));
        end
    }

    /// The core handled a frame of this stream: the reader may read one more.
    pub(crate) fn handled(&self) {
        self.credit.add_permits(1);
    }

    /// The peer showed a valid certificate: its frames may be as large as the wire allows.
    pub(crate) fn verified(&self) {
        self.verified.store(true, Ordering::Release);
    }
}

/// Writes the core's frames, each with its length, and tells the core when each has left
/// and when its queue has room again.
async fn write(
    id: u64,
    mut writer: futures::io::WriteHalf<libp2p::Stream>,
    mut out: mpsc::Receiver<Vec<u8>>,
    core: mpsc::Sender<CoreMsg>,
    wants_room: Arc<AtomicBool>,
) {
    while let Some(frame) = out.recv().await {
        if wants_room.swap(false, Ordering::AcqRel) {
            // Never wait on the core from here: if its queue is full, the flag is set
            // again and the next frame tells it.
            if core.try_send(CoreMsg::Drained { id }).is_err() {
                wants_room.store(true, Ordering::Release);
            }
        }
        let Ok(len) = u32::try_from(frame.len()) else {
            break;
        };
        if writer.write_all(&len.to_be_bytes()).await.is_err()
            || writer.write_all(&frame).await.is_err()
        {
            break;
        }
        if writer.flush().await.is_err() {
            break;
        }
        // The peer's silence counts from here (`Host::sent`); a notice lost to a full
        // queue only makes the stall timer count from an earlier frame.
        let _ = core.try_send(CoreMsg::Sent { id });
    }
    let _ = writer.close().await;
}

/// Reads frames, checking each length before reading it, and passes them to the core.
async fn read(
    id: u64,
    mut reader: futures::io::ReadHalf<libp2p::Stream>,
    core: mpsc::Sender<CoreMsg>,
    credit: Arc<tokio::sync::Semaphore>,
    verified: Arc<AtomicBool>,
) {
    loop {
        let mut len = [0u8; 4];
        if reader.read_exact(&mut len).await.is_err() {
            break;
        }
        let len = u32::from_be_bytes(len) as usize;
        // The length comes from the wire: check it before reading. Until the peer is
        // verified, let the core handle every earlier frame first: one of them may be
        // the `Hello` that verifies it.
        if !verified.load(Ordering::Acquire) {
            match credit.acquire_many(FRAMES_IN_FLIGHT as u32).await {
                Ok(all) => drop(all),
                Err(_) => return,
            }
        }
        let max = if verified.load(Ordering::Acquire) {
            MESSAGE_BYTES_MAX
        } else {
            UNVERIFIED_FRAME_MAX
        };
        if len > max {
            tracing::warn!(len, max, "oversized frame; closing the stream");
            break;
        }
        // Grow the buffer with what arrives, not with what the peer announced: a peer
        // that announces 1 MiB and sends a byte a second holds only what it sent.
        let mut bytes = Vec::new();
        match (&mut reader).take(len as u64).read_to_end(&mut bytes).await {
            Ok(n) if n == len => {}
            _ => break,
        }
        // Wait until the core has handled enough of this stream's earlier frames.
        match credit.acquire().await {
            Ok(permit) => permit.forget(),
            Err(_) => return,
        }
        if core.send(CoreMsg::Frame { id, bytes }).await.is_err() {
            return;
        }
    }
    let _ = core.send(CoreMsg::Closed { id }).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outbox(capacity: usize) -> (Outbox, mpsc::Receiver<Vec<u8>>) {
        let (out, rx) = mpsc::channel(capacity);
        let outbox = Outbox {
            out,
            backlog: VecDeque::new(),
            backlog_bytes: 0,
            wants_room: Arc::new(AtomicBool::new(false)),
        };
        (outbox, rx)
    }

    #[test]
    fn a_peer_that_does_not_read_fills_a_bounded_backlog_and_never_blocks() {
        let (mut outbox, mut rx) = outbox(2);
        // Two frames fill the writer's queue; two more wait in the backlog, in order.
        for i in 0..4u8 {
            assert!(outbox.send(vec![i; 100], 250).is_ok());
        }
        assert_eq!(outbox.backlog_bytes, 200);
        assert!(outbox.wants_room.load(Ordering::Acquire));
        // Past the bound the session must go.
        assert!(matches!(
            outbox.send(vec![4; 100], 250),
            Err(Queue::Overflow)
        ));
        // The writer takes one; the backlog moves on in order.
        assert_eq!(rx.try_recv().unwrap()[0], 0);
        outbox.backlog.pop_back();
        outbox.backlog_bytes -= 100;
        outbox.drain().ok().unwrap();
        assert_eq!(outbox.backlog_bytes, 100);
        assert_eq!(rx.try_recv().unwrap()[0], 1);
        assert_eq!(rx.try_recv().unwrap()[0], 2);
        outbox.drain().ok().unwrap();
        assert_eq!(rx.try_recv().unwrap()[0], 3);
        assert_eq!(outbox.backlog_bytes, 0);
        // A stream whose writer is gone is closed.
        drop(rx);
        assert!(matches!(outbox.send(vec![5], 250), Err(Queue::Closed)));
    }
}
