//! The daemon's threads for signature checks: the protocol starts none of its own
//! (`guihe_protocol::signed::Parallel`), so the node lends it its cores.

use guihe_protocol::signed::Parallel;

/// Runs a batch's parts on up to `width` scoped threads.
#[derive(Debug, Clone, Copy)]
pub struct Threads {
    width: usize,
}

impl Threads {
    /// As many threads as the machine has cores, at most 8.
    pub fn of_machine() -> Threads {
        Threads {
            width: std::thread::available_parallelism()
                .map(std::num::NonZeroUsize::get)
                .unwrap_or(1)
                .min(8),
        }
    }
}

impl Parallel for Threads {
    fn width(&self) -> usize {
        self.width
    }

    fn run<'a>(&self, jobs: Vec<Box<dyn FnOnce() + Send + 'a>>) {
        std::thread::scope(|scope| {
            let handles: Vec<_> = jobs.into_iter().map(|job| scope.spawn(job)).collect();
            for h in handles {
                // A job whose thread failed leaves its part unchecked: the protocol
                // refuses the batch.
                let _ = h.join();
            }
        });
    }
}
