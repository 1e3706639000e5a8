//! Telling a silent charger from a dead link: when nothing has arrived from a charger for the
//! ping interval, its session sends a WebSocket Ping; when still nothing arrives within the
//! pong timeout, the session closes the connection and the charger goes offline like any other
//! disconnect. Without this a charger behind a dead NAT mapping or with hung firmware would
//! stay "connected" forever, holding its slot, and operator commands to it would wait for the
//! command timeout instead of failing at once as offline.
//!
//! Any frame counts as life (CALLs, answers, pings, pongs), so a busy charger is never pinged.
//! This is the gateway's own check, independent of the charger-side OCPP 2.0.1 variable
//! `OCPPCommCtrlr.WebSocketPingInterval`.
//!
//! Cost: tens of thousands of idle sessions each keep one of these, so a received frame only
//! records the time ([`Liveness::heard`]); no timer is touched. The session owns one timer,
//! armed at [`Liveness::deadline`], and only when it fires does [`Liveness::on_timer`] look at
//! the clock and say when to wake next: a busy charger costs one timer re-arm per interval.
//! This module does no I/O and reads no clock; the session passes the time in.

use std::time::Duration;

use tokio::time::Instant;

/// How long a charger may stay silent before it is pinged, and how long it then has to send
/// anything at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeepAlive {
    pub ping_interval: Duration,
    pub pong_timeout: Duration,
}

/// What the session does when its keep-alive timer fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Due {
    /// The charger was heard recently enough: wake again at this instant.
    Wait(Instant),
    /// The charger has been silent for the ping interval: send a Ping and wake again at
    /// this instant, the end of the pong timeout.
    Ping(Instant),
    /// Nothing arrived within the pong timeout after a Ping: the link is dead.
    GiveUp,
}

/// One session's keep-alive bookkeeping.
#[derive(Debug)]
pub(crate) struct Liveness {
    settings: KeepAlive,
    last_heard: Instant,
    /// When the outstanding Ping was sent; `None` when none is outstanding.
    ping_sent: Option<Instant>,
}

impl Liveness {
    /// A session that starts at `now` (the handshake counts as hearing from the charger).
    pub(crate) fn new(settings: KeepAlive, now: Instant) -> Liveness {
        Liveness {
            settings,
            last_heard: now,
            ping_sent: None,
        }
    }

    /// Records that a frame (of any kind) arrived at `now`; an outstanding Ping counts as
    /// answered.
    pub(crate) fn heard(&mut self, now: Instant) {
        self.last_heard = now;
        self.ping_sent = None;
    }

    /// When the session's timer should next fire.
    pub(crate) fn deadline(&self) -> Instant {
        match self.ping_sent {
            Some(sent) => sent + self.settings.pong_timeout,
            None => self.last_heard + self.settings.ping_interval,
        }
    }

    /// What to do when the timer fires at `now` (possibly later than asked, never earlier
    /// than it matters: an early call just waits again).
    pub(crate) fn on_timer(&mut self, now: Instant) -> Due {
        if let Some(sent) = self.ping_sent {
            let answer_by = sent + self.settings.pong_timeout;
            return if now >= answer_by {
                Due::GiveUp
            } else {
                Due::Wait(answer_by)
            };
        }
        let silent_from = self.last_heard + self.settings.ping_interval;
        if now < silent_from {
            return Due::Wait(silent_from);
        }
        self.ping_sent = Some(now);
        Due::Ping(now + self.settings.pong_timeout)
    }

    /// How long ago the charger was last heard.
    pub(crate) fn silent_for(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.last_heard)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SETTINGS: KeepAlive = KeepAlive {
        ping_interval: Duration::from_secs(60),
        pong_timeout: Duration::from_secs(30),
    };

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn a_silent_charger_is_pinged_after_the_interval_and_given_up_after_the_timeout() {
        let start = Instant::now();
        let mut liveness = Liveness::new(SETTINGS, start);
        assert_eq!(liveness.deadline(), start + secs(60));
        assert_eq!(
            liveness.on_timer(start + secs(59)),
            Due::Wait(start + secs(60))
        );
        assert_eq!(
            liveness.on_timer(start + secs(60)),
            Due::Ping(start + secs(90))
        );
        assert_eq!(liveness.deadline(), start + secs(90));
        assert_eq!(
            liveness.on_timer(start + secs(89)),
            Due::Wait(start + secs(90))
        );
        assert_eq!(liveness.on_timer(start + secs(90)), Due::GiveUp);
        assert_eq!(liveness.silent_for(start + secs(90)), secs(90));
    }

    #[test]
    fn any_frame_answers_the_ping_and_restarts_the_interval() {
        let start = Instant::now();
        let mut liveness = Liveness::new(SETTINGS, start);
        assert_eq!(
            liveness.on_timer(start + secs(61)),
            Due::Ping(start + secs(91))
        );
        liveness.heard(start + secs(70));
        assert_eq!(liveness.deadline(), start + secs(130));
        // The timer still fires at the old pong deadline: it only re-arms.
        assert_eq!(
            liveness.on_timer(start + secs(91)),
            Due::Wait(start + secs(130))
        );
        assert_eq!(
            liveness.on_timer(start + secs(130)),
            Due::Ping(start + secs(160))
        );
    }

    #[test]
    fn a_busy_charger_is_never_pinged() {
        let start = Instant::now();
        let mut liveness = Liveness::new(SETTINGS, start);
        let mut timer = liveness.deadline();
        // A frame every 10 s for an hour; the timer fires at each deadline it was given.
        for second in (10..3600).step_by(10) {
            let now = start + secs(second);
            while timer <= now {
                match liveness.on_timer(timer) {
                    Due::Wait(at) => timer = at,
                    other => panic!("at {second} s: {other:?}"),
                }
            }
            liveness.heard(now);
        }
    }

    #[test]
    fn a_late_timer_still_pings_first_and_gives_the_full_pong_timeout() {
        let start = Instant::now();
        let mut liveness = Liveness::new(SETTINGS, start);
        // The session was busy elsewhere and the timer ran long after both deadlines.
        assert_eq!(
            liveness.on_timer(start + secs(500)),
            Due::Ping(start + secs(530))
        );
        assert_eq!(liveness.on_timer(start + secs(530)), Due::GiveUp);
    }
}
