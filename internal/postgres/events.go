package postgres

import "fmt"

// eventsLockID keys the advisory lock that keeps readers of the audit log
// from seeing an event before every event with a lower id. It differs from
// migrationLockID.
const eventsLockID int64 = 0x746f6b656e64_01

// Event ids come from an identity sequence, drawn when the row is inserted,
// but a row becomes visible when its transaction commits, and two writers
// may commit in the other order. A reader that saw the higher id, and later
// followed the log from there (newest first, down to the highest id it
// knew), would never see the lower one. So a writer draws its id holding
// the events lock in shared mode until it commits (eventWriteLock, run by
// the core before every event insert), and Events reads holding it
// exclusively (eventReadLock, for that read only): a read waits for the
// writers that already drew ids, and sees a gap-free prefix of the log.
// Writers do not wait for each other, so their commits still share fsyncs;
// they wait only while a read runs.
var (
	eventWriteLock = fmt.Sprintf(`SELECT pg_advisory_xact_lock_shared(%d)`, eventsLockID)
	eventReadLock  = fmt.Sprintf(`SELECT pg_advisory_xact_lock(%d)`, eventsLockID)
)

// leadLock is the flavor's LeadLock: a transaction-scoped advisory lock on
// the pair (leadLockClass, hash of the job's name), which cannot meet the
// single-key locks above (PostgreSQL keeps the two key spaces apart).
var leadLock = fmt.Sprintf(`SELECT pg_try_advisory_xact_lock(%d, hashtext($1))`, leadLockClass)

// appNamesLock is the flavor's LockAppNames: the pair (leadLockClass, 0),
// which no job name's hash in LeadLock's key space takes but by chance, and
// then only delays that job's turn.
var appNamesLock = fmt.Sprintf(`SELECT pg_advisory_xact_lock(%d, 0)`, leadLockClass)

// leadLockClass is "toke" in ASCII.
const leadLockClass int32 = 0x746f6b65
