-- The leader lease (engine/dispatch/lease.py). Times are the database's own clock: every engine
-- compares against the same one.

-- name: acquire
-- Take the lease when nobody holds a live one; a new epoch fences off every earlier leader.
INSERT INTO engine_leader AS l (id, epoch, holder, since, renewed_at, expires_at)
VALUES (true, 1, $1, now(), now(), now() + make_interval(secs => $2))
ON CONFLICT (id) DO UPDATE
SET epoch = l.epoch + 1, holder = $1, since = now(), renewed_at = now(),
    expires_at = now() + make_interval(secs => $2)
WHERE l.expires_at <= now()
RETURNING epoch, since;

-- name: renew
-- Extend our own lease. Allowed even after it lapsed, as long as nobody took it meanwhile: the
-- epoch is unchanged, so no other engine has bound anything since.
UPDATE engine_leader SET renewed_at = now(), expires_at = now() + make_interval(secs => $3)
WHERE epoch = $1 AND holder = $2
RETURNING expires_at;

-- name: release
-- A clean stop hands over at once instead of letting the standby wait out the lease.
UPDATE engine_leader SET expires_at = now() WHERE epoch = $1 AND holder = $2;

-- name: current
SELECT holder, epoch, since, renewed_at, expires_at, expires_at > now() AS live FROM engine_leader;
