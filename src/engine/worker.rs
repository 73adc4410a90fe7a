//! One worker thread: a `mio::Poll`, the links placed on it, and the buffers they share.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TrySendError};
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};

use super::endpoint::{Endpoint, Inbox};
use super::stage::{Frame, FrameRef, Stage, Verdict};
use super::{Link, LinkId, Select};
use crate::clock::now_ns;
use crate::direction::Direction;
use crate::net::batch::{MAX_DATAGRAM, SendBatch};
use crate::splice::copy::{self, CopyBatch, CopyFilter, CopySender, Spare};
use crate::splice::stats::DirectionStats;

/// The token of the worker's waker.
pub(super) const WAKER: Token = Token(usize::MAX);

/// The token of the worker's timerfd, which wakes it for the timer heap's earliest timer to
/// the nanosecond (epoll's own timeout rounds up to the next millisecond).
const TIMER: Token = Token(usize::MAX - 1);

/// Frames per receive and per send system call.
pub const BATCH: usize = 64;

/// Receive batches served per endpoint and readiness event before other endpoints get their
/// turn; one that is still readable then waits in the worker's ready list.
const BATCHES_PER_TURN: usize = 4;

/// Receive batches forwarded at most from an endpoint when its link is removed or the engine
/// stops (what is already queued, without waiting).
const DRAIN_BATCHES: usize = 64;

/// Bits of a token that number the endpoint within its link.
const ENDPOINT_BITS: u32 = 16;

fn token(slot: usize, endpoint: usize) -> Token {
    Token((slot << ENDPOINT_BITS) | endpoint)
}

fn split(token: Token) -> (usize, usize) {
    (
        token.0 >> ENDPOINT_BITS,
        token.0 & ((1 << ENDPOINT_BITS) - 1),
    )
}

/// What the engine asks of a worker.
pub(super) enum Command {
    /// Place a link here; the reply says whether its endpoints could be registered.
    Add {
        id: LinkId,
        link: Link,
        shared: Vec<Arc<Mutex<DirectionStats>>>,
        reply: Sender<std::io::Result<()>>,
    },
    /// Forward what the link has queued, close it and reply.
    Remove { id: LinkId, reply: Sender<()> },
    /// Close every link and end the thread.
    Stop,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum TimerOf {
    Stage { route: usize, stage: usize },
    Endpoint(usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Timer {
    due: Instant,
    slot: usize,
    generation: u64,
    of: TimerOf,
}

struct EndpointState {
    endpoint: Box<dyn Endpoint>,
    /// In the worker's ready list.
    ready: bool,
    armed: Option<Instant>,
}

struct StageState {
    stage: Box<dyn Stage>,
    armed: Option<Instant>,
}

struct RouteState {
    from: usize,
    to: Vec<usize>,
    direction: Direction,
    stages: Vec<StageState>,
    select: Option<Box<dyn Select>>,
    copy_link: Option<usize>,
    stats: DirectionStats,
    shared: Arc<Mutex<DirectionStats>>,
}

impl RouteState {
    fn publish(&self) {
        *self.shared.lock().unwrap_or_else(PoisonError::into_inner) = self.stats;
    }
}

struct LinkState {
    id: LinkId,
    generation: u64,
    endpoints: Vec<EndpointState>,
    routes: Vec<RouteState>,
}

/// Where a link's frames go once they leave the stages: the send batch, the copy channel and
/// the timer heap, shared by every link of the worker.
struct Io {
    send: SendBatch,
    copy: Option<CopySender>,
    filter: CopyFilter,
    /// Consumed copy batches come back here to be filled again.
    back: Sender<Spare>,
    spares: Receiver<Spare>,
    timers: BinaryHeap<Reverse<Timer>>,
}

pub(super) struct Worker {
    poll: Poll,
    /// Armed for the earliest timer; `None` if the system gave none (epoll's timeout then
    /// serves alone).
    timerfd: Option<std::os::fd::OwnedFd>,
    /// The instant the timerfd is armed for.
    timerfd_due: Option<Instant>,
    commands: Receiver<Command>,
    links: Vec<Option<LinkState>>,
    free: Vec<usize>,
    slots: HashMap<LinkId, usize>,
    generation: u64,
    inbox: Inbox,
    ready: Vec<(usize, usize)>,
    io: Io,
}

impl Worker {
    pub(super) fn new(
        poll: Poll,
        commands: Receiver<Command>,
        copy: Option<CopySender>,
        filter: CopyFilter,
    ) -> Worker {
        let (back, spares) = crossbeam_channel::bounded(copy::SPARE_BATCHES);
        let timerfd = crate::net::sys::timerfd().ok().filter(|fd| {
            let raw = std::os::fd::AsRawFd::as_raw_fd(fd);
            poll.registry()
                .register(&mut SourceFd(&raw), TIMER, Interest::READABLE)
                .is_ok()
        });
        Worker {
            poll,
            timerfd,
            timerfd_due: None,
            commands,
            links: Vec::new(),
            free: Vec::new(),
            slots: HashMap::new(),
            generation: 0,
            inbox: Inbox::new(BATCH, MAX_DATAGRAM),
            ready: Vec::new(),
            io: Io {
                send: SendBatch::new(BATCH),
                copy,
                filter,
                back,
                spares,
                timers: BinaryHeap::new(),
            },
        }
    }

    /// Serves readiness, timers and commands until told to stop.
    pub(super) fn run(mut self) {
        let mut events = Events::with_capacity(256);
        loop {
            let timeout = if self.ready.is_empty() {
                let due = self.io.timers.peek().map(|Reverse(t)| t.due);
                self.arm_timerfd(due);
                due.map(|due| due.saturating_duration_since(Instant::now()))
            } else {
                Some(Duration::ZERO)
            };
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                break;
            }
            let earlier = std::mem::take(&mut self.ready);
            let mut woken = false;
            for event in events.iter() {
                if event.token() == WAKER {
                    woken = true;
                    continue;
                }
                if event.token() == TIMER {
                    if let Some(fd) = &self.timerfd {
                        let _ = crate::net::sys::timerfd_clear(std::os::fd::AsFd::as_fd(fd));
                    }
                    self.timerfd_due = None;
                    continue;
                }
                let (slot, endpoint) = split(event.token());
                if event.is_writable()
                    && let Some(state) = self.endpoint(slot, endpoint)
                {
                    state.endpoint.writable();
                    self.arm_link(slot);
                }
                if event.is_readable() || event.is_read_closed() || event.is_error() {
                    self.serve(slot, endpoint, BATCHES_PER_TURN, true);
                }
            }
            for (slot, endpoint) in earlier {
                if let Some(state) = self.endpoint(slot, endpoint) {
                    state.ready = false;
                    self.serve(slot, endpoint, BATCHES_PER_TURN, true);
                }
            }
            if !self.io.timers.is_empty() {
                self.fire_timers();
            }
            if woken && self.commands() {
                break;
            }
        }
        let slots: Vec<usize> = self.slots.drain().map(|(_, slot)| slot).collect();
        for slot in slots {
            self.close(slot);
        }
    }

    /// Arms the timerfd for `due` unless it is armed for it already.
    fn arm_timerfd(&mut self, due: Option<Instant>) {
        let (Some(fd), Some(due)) = (&self.timerfd, due) else {
            return;
        };
        if self.timerfd_due == Some(due) {
            return;
        }
        let after = due.saturating_duration_since(Instant::now());
        if !after.is_zero()
            && crate::net::sys::timerfd_arm(std::os::fd::AsFd::as_fd(fd), after).is_ok()
        {
            self.timerfd_due = Some(due);
        }
    }

    fn endpoint(&mut self, slot: usize, endpoint: usize) -> Option<&mut EndpointState> {
        self.links
            .get_mut(slot)
            .and_then(Option::as_mut)
            .and_then(|link| link.endpoints.get_mut(endpoint))
    }

    /// Takes the queued commands; true when told to stop.
    fn commands(&mut self) -> bool {
        while let Ok(command) = self.commands.try_recv() {
            match command {
                Command::Add {
                    id,
                    link,
                    shared,
                    reply,
                } => {
                    let outcome = self.add(id, link, shared);
                    let _ = reply.send(outcome);
                }
                Command::Remove { id, reply } => {
                    if let Some(slot) = self.slots.remove(&id) {
                        self.close(slot);
                    }
                    let _ = reply.send(());
                }
                Command::Stop => return true,
            }
        }
        false
    }

    fn add(
        &mut self,
        id: LinkId,
        link: Link,
        shared: Vec<Arc<Mutex<DirectionStats>>>,
    ) -> std::io::Result<()> {
        let slot = self.free.pop().unwrap_or_else(|| {
            self.links.push(None);
            self.links.len() - 1
        });
        let mut endpoints: Vec<EndpointState> = link
            .endpoints
            .into_iter()
            .map(|endpoint| EndpointState {
                endpoint,
                ready: false,
                armed: None,
            })
            .collect();
        for i in 0..endpoints.len() {
            if let Err(e) = endpoints[i]
                .endpoint
                .register(self.poll.registry(), token(slot, i))
            {
                for registered in &mut endpoints[..i] {
                    let _ = registered.endpoint.deregister(self.poll.registry());
                }
                self.free.push(slot);
                return Err(e);
            }
        }
        self.generation += 1;
        let routes = link
            .routes
            .into_iter()
            .zip(shared)
            .map(|(route, shared)| RouteState {
                from: route.from,
                to: route.to,
                direction: route.direction,
                select: route.select,
                copy_link: route.copy_link,
                stages: route
                    .stages
                    .into_iter()
                    .map(|stage| StageState { stage, armed: None })
                    .collect(),
                stats: DirectionStats::default(),
                shared,
            })
            .collect();
        let mut state = LinkState {
            id,
            generation: self.generation,
            endpoints,
            routes,
        };
        for (i, endpoint) in state.endpoints.iter_mut().enumerate() {
            arm_endpoint(endpoint, slot, state.generation, i, &mut self.io.timers);
        }
        self.links[slot] = Some(state);
        self.slots.insert(id, slot);
        Ok(())
    }

    /// Receives from one endpoint up to `batches` times and forwards what came. With
    /// `requeue`, an endpoint that may have more joins the ready list. Then asks for the
    /// timers the link's endpoints want now (a stream whose peer went away wants one to
    /// reconnect).
    fn serve(&mut self, slot: usize, endpoint: usize, batches: usize, requeue: bool) {
        self.receive(slot, endpoint, batches, requeue);
        self.arm_link(slot);
    }

    /// Arms the timer each endpoint of the link at `slot` wants, if earlier than the one it
    /// has.
    fn arm_link(&mut self, slot: usize) {
        let Some(link) = self.links.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        for (i, state) in link.endpoints.iter_mut().enumerate() {
            arm_endpoint(state, slot, link.generation, i, &mut self.io.timers);
        }
    }

    fn receive(&mut self, slot: usize, endpoint: usize, batches: usize, requeue: bool) {
        let Some(link) = self.links.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        if endpoint >= link.endpoints.len() {
            return;
        }
        for _ in 0..batches {
            self.inbox.clear();
            let outcome = link.endpoints[endpoint].endpoint.receive(&mut self.inbox);
            if !self.inbox.is_empty() {
                forward(link, slot, endpoint, &self.inbox, &mut self.io);
            }
            if outcome.is_err() || !self.inbox.is_full() {
                return;
            }
        }
        let state = &mut link.endpoints[endpoint];
        if requeue && !state.ready {
            state.ready = true;
            self.ready.push((slot, endpoint));
        }
    }

    fn fire_timers(&mut self) {
        let now = Instant::now();
        let mut released = Vec::new();
        while let Some(&Reverse(timer)) = self.io.timers.peek() {
            if timer.due > now {
                break;
            }
            self.io.timers.pop();
            let Some(link) = self.links.get_mut(timer.slot).and_then(Option::as_mut) else {
                continue;
            };
            if link.generation != timer.generation {
                continue;
            }
            match timer.of {
                TimerOf::Stage { route, stage } => {
                    let state = &mut link.routes[route].stages[stage];
                    if state.armed != Some(timer.due) {
                        continue;
                    }
                    state.armed = None;
                    released.clear();
                    state.stage.release(Some(now), &mut released);
                    pass_released(link, timer.slot, route, stage, &released, now, &mut self.io);
                    for (i, state) in link.endpoints.iter_mut().enumerate() {
                        arm_endpoint(state, timer.slot, link.generation, i, &mut self.io.timers);
                    }
                }
                TimerOf::Endpoint(endpoint) => {
                    let state = &mut link.endpoints[endpoint];
                    if state.armed != Some(timer.due) {
                        continue;
                    }
                    state.armed = None;
                    // An endpoint that fails to come back (a reconnect) retries at its next
                    // timer; there is no one to tell but its own counters.
                    let _ = state.endpoint.timer(
                        now,
                        self.poll.registry(),
                        token(timer.slot, endpoint),
                    );
                    arm_endpoint(
                        state,
                        timer.slot,
                        link.generation,
                        endpoint,
                        &mut self.io.timers,
                    );
                }
            }
        }
    }

    /// Forwards what the link's endpoints have queued, releases what its stages hold, then
    /// closes its endpoints (a steal socket's close hands the tunnel back to its VMs).
    fn close(&mut self, slot: usize) {
        let Some(count) = self.links[slot].as_ref().map(|l| l.endpoints.len()) else {
            return;
        };
        for endpoint in 0..count {
            self.serve(slot, endpoint, DRAIN_BATCHES, false);
        }
        let Some(mut link) = self.links[slot].take() else {
            return;
        };
        let now = Instant::now();
        let mut released = Vec::new();
        for route in 0..link.routes.len() {
            for stage in 0..link.routes[route].stages.len() {
                released.clear();
                link.routes[route].stages[stage]
                    .stage
                    .release(None, &mut released);
                pass_released(&mut link, slot, route, stage, &released, now, &mut self.io);
            }
            link.routes[route].publish();
        }
        for state in &mut link.endpoints {
            let _ = state.endpoint.deregister(self.poll.registry());
        }
        self.ready.retain(|&(s, _)| s != slot);
        self.slots.remove(&link.id);
        drop(link);
        self.free.push(slot);
    }
}

fn arm_endpoint(
    state: &mut EndpointState,
    slot: usize,
    generation: u64,
    endpoint: usize,
    timers: &mut BinaryHeap<Reverse<Timer>>,
) {
    let wanted = state.endpoint.next_timer();
    let of = TimerOf::Endpoint(endpoint);
    arm(&mut state.armed, wanted, (slot, generation, of), timers);
}

/// Asks the timer heap for each stage of a route that wants a timer earlier than it has.
fn arm_stages(
    route: &mut RouteState,
    index: usize,
    slot: usize,
    generation: u64,
    timers: &mut BinaryHeap<Reverse<Timer>>,
) {
    for (stage, state) in route.stages.iter_mut().enumerate() {
        let wanted = state.stage.next_timer();
        let of = TimerOf::Stage {
            route: index,
            stage,
        };
        arm(&mut state.armed, wanted, (slot, generation, of), timers);
    }
}

/// Pushes a timer for `wanted` when it is earlier than the one `armed` (an endpoint's or a
/// stage's) already has in the heap.
fn arm(
    armed: &mut Option<Instant>,
    wanted: Option<Instant>,
    (slot, generation, of): (usize, u64, TimerOf),
    timers: &mut BinaryHeap<Reverse<Timer>>,
) {
    if let Some(due) = wanted
        && armed.is_none_or(|armed| due < armed)
    {
        *armed = Some(due);
        timers.push(Reverse(Timer {
            due,
            slot,
            generation,
            of,
        }));
    }
}

/// Runs frames through the stages from `first` on; returns those that passed every one.
fn run_stages<'a>(
    route: &mut RouteState,
    first: usize,
    frames: impl Iterator<Item = FrameRef<'a>>,
    now: Instant,
) -> Vec<FrameRef<'a>> {
    let mut passed = Vec::new();
    'frames: for frame in frames {
        for state in &mut route.stages[first..] {
            match state.stage.process(frame, now) {
                Verdict::Pass => {}
                Verdict::Drop => {
                    route.stats.drop_stage();
                    continue 'frames;
                }
                Verdict::Hold => continue 'frames,
            }
        }
        passed.push(frame);
    }
    passed
}

/// Frames a stage released: through the stages after it, then out.
fn pass_released(
    link: &mut LinkState,
    slot: usize,
    route: usize,
    stage: usize,
    released: &[Frame],
    now: Instant,
    io: &mut Io,
) {
    let LinkState {
        endpoints,
        routes,
        generation,
        id,
        ..
    } = link;
    let state = &mut routes[route];
    let frames = released.iter().map(|f| FrameRef {
        data: &f.data,
        received_ns: f.received_ns,
    });
    let passed = run_stages(state, stage + 1, frames, now);
    deliver(endpoints, state, *id, &passed, io);
    arm_stages(state, route, slot, *generation, &mut io.timers);
    state.publish();
}

/// Accepts the frames of `inbox` that came in at endpoint `from` onto each route leaving it,
/// runs them through the route's stages and delivers what passes.
fn forward(link: &mut LinkState, slot: usize, from: usize, inbox: &Inbox, io: &mut Io) {
    let LinkState {
        endpoints,
        routes,
        generation,
        id,
        ..
    } = link;
    for (index, route) in routes.iter_mut().enumerate() {
        if route.from != from {
            continue;
        }
        let source = &endpoints[from].endpoint;
        let mut accepted = Vec::with_capacity(inbox.len());
        for (data, meta) in inbox.frames() {
            route.stats.kernel_counter(meta.kernel_drops);
            if !source.accepts(meta) {
                route.stats.drop_foreign_source();
            } else if meta.truncated {
                route.stats.drop_truncated();
            } else if data.is_empty() {
                route.stats.drop_zero_length();
            } else {
                accepted.push(FrameRef {
                    data,
                    received_ns: meta.timestamp_ns,
                });
            }
        }
        if route
            .stages
            .iter_mut()
            .all(|state| state.stage.transparent())
        {
            deliver(endpoints, route, *id, &accepted, io);
        } else {
            let passed = run_stages(route, 0, accepted.into_iter(), Instant::now());
            deliver(endpoints, route, *id, &passed, io);
            arm_stages(route, index, slot, *generation, &mut io.timers);
        }
        route.publish();
    }
}

/// Sends frames to every endpoint of the route, counts them and offers copies to the copy
/// channel without waiting for it.
fn deliver(
    endpoints: &mut [EndpointState],
    route: &mut RouteState,
    link: LinkId,
    frames: &[FrameRef<'_>],
    io: &mut Io,
) {
    if frames.is_empty() {
        return;
    }
    let slices: Vec<&[u8]> = frames.iter().map(|f| f.data).collect();
    for frame in &slices {
        route.stats.forwarded(frame.len());
    }
    let chosen: Vec<u64> = match &mut route.select {
        Some(select) => {
            let now = Instant::now();
            slices.iter().map(|f| select.select(f, now)).collect()
        }
        None => Vec::new(),
    };
    let mut picked: Vec<&[u8]> = Vec::new();
    for (position, &to) in route.to.iter().enumerate() {
        let frames = if route.select.is_some() {
            picked.clear();
            let bit = 1u64 << position.min(63);
            picked.extend(
                slices
                    .iter()
                    .zip(&chosen)
                    .filter(|(_, set)| *set & bit != 0)
                    .map(|(f, _)| *f),
            );
            if picked.is_empty() {
                continue;
            }
            &picked
        } else {
            &slices
        };
        let outcome = endpoints[to].endpoint.send(&mut io.send, frames);
        if outcome.failed > 0 {
            route
                .stats
                .unsent(outcome.failed as u64, outcome.failed_bytes);
        }
    }
    let Some(sender) = &io.copy else {
        return;
    };
    let filter = io.filter;
    let taken = || frames.iter().filter(|f| filter.takes(f.data));
    let (count, bytes) = taken().fold((0, 0), |(n, b), f| (n + 1, b + f.data.len()));
    if count == 0 {
        return;
    }
    // One clock reading per batch: the return of the send, for the splice's own delay.
    let mut copies = CopyBatch::new(
        (route.copy_link.unwrap_or(link.0), route.direction, now_ns()),
        io.spares.try_recv().unwrap_or_default(),
        (count, bytes),
        Some(io.back.clone()),
    );
    for frame in taken() {
        copies.push(frame.data, frame.received_ns);
    }
    match sender.try_send(copies) {
        Ok(()) => {}
        Err(TrySendError::Full(_)) => route.stats.drop_copy(count as u64),
        Err(TrySendError::Disconnected(_)) => io.copy = None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_carry_the_slot_and_the_endpoint() {
        assert_eq!(split(token(0, 0)), (0, 0));
        assert_eq!(split(token(12345, 7)), (12345, 7));
        assert_ne!(token(0, 0), WAKER);
    }
}
