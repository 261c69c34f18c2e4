package embedded

import (
	"context"
	"database/sql"
	"path/filepath"

	"github.com/skrytka/skrytka/internal/store"
)

// Group commit. Every write goes through one goroutine that owns the single
// write connection. It takes the first pending request, then every other
// request already queued (up to Options.MaxBatch), runs each inside its own
// SAVEPOINT of one transaction, and commits once: one WAL fsync for the
// whole batch. A request whose function fails is rolled back to its
// savepoint without disturbing the others. Callers are acknowledged only
// after the shared commit returned, and changes are published to the feed
// only then, in commit order. No artificial delay is added: while one
// commit's fsync is in flight, new requests queue up and form the next
// batch.

// writeOp is one queued write.
type writeOp struct {
	ctx     context.Context
	fn      func(w *wtx) error
	err     error
	done    chan struct{}
	changes []store.Change
	after   []func() // run after a successful commit
	dirSync bool     // references a new file in tmp/: sync the directory first
	undo    []func() // run when the op did not commit
}

// wtx is the view of the batch transaction that one write function gets.
type wtx struct {
	s     *Store
	tx    *sql.Tx
	op    *writeOp
	blobs map[*staged]int64 // bodies inserted by this op
}

// Statements are prepared on the writer connection between batches (it is
// busy inside one): a query not yet prepared runs unprepared once and is
// prepared after the batch.

func (w *wtx) prepared(q string) *sql.Stmt {
	st, ok := w.s.wstmts[q]
	if !ok {
		w.s.wpending[q] = struct{}{}
		return nil
	}
	return w.tx.Stmt(st)
}

func (w *wtx) exec(q string, args ...any) (sql.Result, error) {
	if st := w.prepared(q); st != nil {
		return st.Exec(args...)
	}
	return w.tx.Exec(q, args...)
}

func (w *wtx) query(q string, args ...any) (*sql.Rows, error) {
	if st := w.prepared(q); st != nil {
		return st.Query(args...)
	}
	return w.tx.Query(q, args...)
}

// queryRow runs a query expected to return one row and scans it.
func (w *wtx) queryRow(q string, args []any, dest ...any) error {
	if st := w.prepared(q); st != nil {
		return st.QueryRow(args...).Scan(dest...)
	}
	return w.tx.QueryRow(q, args...).Scan(dest...)
}

// prepareStmts prepares the queries seen in the last batch. Called by the
// writer with no transaction open.
func (s *Store) prepareStmts() {
	for q := range s.wpending {
		delete(s.wpending, q)
		st, err := s.wdb.Prepare(q)
		if err != nil {
			continue // it keeps running unprepared
		}
		s.wstmts[q] = st
	}
}

// publish queues a change for the feed, sent after the commit.
func (w *wtx) publish(c store.Change) { w.op.changes = append(w.op.changes, c) }

// afterCommit registers f to run (in the writer) once the op committed.
func (w *wtx) afterCommit(f func()) { w.op.after = append(w.op.after, f) }

// onFailure registers f to run when the op does not commit.
func (w *wtx) onFailure(f func()) { w.op.undo = append(w.op.undo, f) }

// write runs fn in the writer and returns once its transaction committed
// (durably) or failed. A cancelled ctx stops the op only before it starts;
// once queued, write waits for the truth so that it never reports failure
// for data that committed.
func (s *Store) write(ctx context.Context, fn func(w *wtx) error) error {
	op := &writeOp{ctx: ctx, fn: fn, done: make(chan struct{})}
	s.wmu.RLock()
	if s.closed {
		s.wmu.RUnlock()
		return store.ErrClosed
	}
	select {
	case s.writes <- op:
	case <-ctx.Done():
		s.wmu.RUnlock()
		return ctx.Err()
	}
	s.wmu.RUnlock()
	<-op.done
	return op.err
}

func (s *Store) writer() {
	defer close(s.wdone)
	batch := make([]*writeOp, 0, s.opts.MaxBatch)
	for {
		batch = batch[:0]
		select {
		case op := <-s.writes:
			batch = append(batch, op)
		case <-s.quit:
			// Close set closed under wmu, so no sender is left: drain.
			for {
				batch = batch[:0]
			drain:
				for len(batch) < s.opts.MaxBatch {
					select {
					case op := <-s.writes:
						batch = append(batch, op)
					default:
						break drain
					}
				}
				if len(batch) == 0 {
					s.closeStmts()
					return
				}
				s.runBatch(batch)
			}
		}
	fill:
		for len(batch) < s.opts.MaxBatch {
			select {
			case op := <-s.writes:
				batch = append(batch, op)
			default:
				break fill
			}
		}
		s.runBatch(batch)
		s.prepareStmts()
	}
}

func (s *Store) closeStmts() {
	for q, st := range s.wstmts {
		st.Close()
		delete(s.wstmts, q)
	}
}

// WriteStats reports how many write transactions (group commits) ran and
// how many write requests they carried; ops/batches is the mean batch
// size.
func (s *Store) WriteStats() (batches, ops uint64) {
	return s.nBatches.Load(), s.nOps.Load()
}

// runBatch runs ops in one transaction and acknowledges each.
func (s *Store) runBatch(ops []*writeOp) {
	s.nBatches.Add(1)
	s.nOps.Add(uint64(len(ops)))
	defer func() {
		for _, op := range ops {
			if op.err == nil {
				for _, f := range op.after {
					f()
				}
			} else {
				for _, f := range op.undo {
					f()
				}
			}
		}
		var changes []store.Change
		for _, op := range ops {
			if op.err == nil {
				changes = append(changes, op.changes...)
			}
		}
		if len(changes) > 0 {
			s.hub.Publish(changes...)
		}
		for _, op := range ops {
			close(op.done)
		}
	}()
	failAll := func(err error) {
		err = translate(err)
		for _, op := range ops {
			if op.err == nil {
				op.err = err
			}
		}
	}
	tx, err := s.wdb.Begin()
	if err != nil {
		failAll(err)
		return
	}
	single := len(ops) == 1
	live := 0
	for _, op := range ops {
		if err := op.ctx.Err(); err != nil {
			op.err = err
			continue
		}
		if !single {
			if _, err := tx.Exec("SAVEPOINT op"); err != nil {
				tx.Rollback()
				failAll(err)
				return
			}
		}
		w := &wtx{s: s, tx: tx, op: op}
		if err := op.fn(w); err != nil {
			op.err = translate(err)
			op.changes, op.after = nil, nil
			if single {
				tx.Rollback()
				return
			}
			if _, rerr := tx.Exec("ROLLBACK TO op"); rerr != nil {
				// SQLite rolled the whole transaction back (I/O error,
				// full disk): nothing of this batch survives.
				tx.Rollback()
				failAll(rerr)
				return
			}
		}
		if !single {
			if _, err := tx.Exec("RELEASE op"); err != nil {
				tx.Rollback()
				failAll(err)
				return
			}
		}
		if op.err == nil {
			live++
		}
	}
	if live == 0 {
		tx.Rollback()
		return
	}
	// One directory fsync covers every body file staged for this batch.
	for _, op := range ops {
		if op.err == nil && op.dirSync {
			if err := syncDir(filepath.Join(s.dir, tmpDir)); err != nil {
				tx.Rollback()
				failAll(err)
				return
			}
			break
		}
	}
	if err := tx.Commit(); err != nil {
		failAll(err)
	}
}
