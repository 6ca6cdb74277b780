//! One current-thread tokio runtime per core, each on its own thread, for the connections of the
//! closed model. A connection's task then always runs on the thread that polls its socket, so a
//! request costs no cross-thread wakeup or work stealing (the multi-thread scheduler spent about a
//! tenth of the worker's CPU on wakeups and task switches); goose's users hand their connections
//! over, partitioned round-robin.

use std::future::Future;
use std::sync::Mutex;
use std::thread::JoinHandle;

use tokio::runtime::Handle;
use tokio::sync::oneshot;

pub(crate) struct Engine {
    handles: Vec<Handle>,
    threads: Mutex<Vec<(oneshot::Sender<()>, JoinHandle<()>)>>,
}

impl Engine {
    /// Starts `threads` runtimes (at least one).
    pub(crate) fn start(threads: usize) -> std::io::Result<Engine> {
        let mut handles = Vec::new();
        let mut running = Vec::new();
        for i in 0..threads.max(1) {
            let (handle_tx, handle_rx) = std::sync::mpsc::channel();
            let (stop_tx, stop_rx) = oneshot::channel::<()>();
            let thread = std::thread::Builder::new()
                .name(format!("serin-load-{i}"))
                .spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build();
                    match rt {
                        Ok(rt) => {
                            let _ = handle_tx.send(Ok(rt.handle().clone()));
                            rt.block_on(async {
                                let _ = stop_rx.await;
                            });
                        }
                        Err(e) => {
                            let _ = handle_tx.send(Err(e));
                        }
                    }
                })?;
            let handle = handle_rx
                .recv()
                .map_err(|_| std::io::Error::other("a load thread ended before it started"))??;
            handles.push(handle);
            running.push((stop_tx, thread));
        }
        Ok(Engine {
            handles,
            threads: Mutex::new(running),
        })
    }

    pub(crate) fn threads(&self) -> usize {
        self.handles.len()
    }

    /// Runs `task` on runtime `i % threads`.
    pub(crate) fn spawn<F>(&self, i: usize, task: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.handles[i % self.handles.len()].spawn(task)
    }

    /// Stops the runtimes (tasks still running are dropped) and joins their threads.
    pub(crate) fn shutdown(&self) {
        let threads = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|p| p.into_inner()));
        for (stop, thread) in threads {
            let _ = stop.send(());
            let _ = thread.join();
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.shutdown();
    }
}
