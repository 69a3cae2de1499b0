package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/tokend/tokend/internal/postgres"
	"github.com/tokend/tokend/internal/sqlite"
	"github.com/tokend/tokend/internal/sqlstore"
)

// isPostgres reports whether --database names a PostgreSQL database.
func isPostgres(database string) bool {
	return strings.HasPrefix(database, "postgres://") || strings.HasPrefix(database, "postgresql://")
}

// sqlitePath is the SQLite database file of c: --database, or tokend.db in
// the data directory.
// sqlitePath expects c.database to be a path already (see sqliteDatabase).
func sqlitePath(c config) string {
	if c.database != "" {
		return c.database
	}
	return filepath.Join(c.dataDir, "tokend.db")
}

// sqliteDatabase turns a file: URL in c.database into its path, as serve
// reads it, and refuses what is no SQLite database.
func sqliteDatabase(c *config) error {
	if c.database == "" {
		return nil
	}
	p, err := sqliteFile(c.database)
	if err != nil {
		return err
	}
	c.database = p
	return nil
}

// sqliteOnly refuses a PostgreSQL c.database for a command that only
// works on SQLite (what says which), pointing to pg_dump, and reads any
// other as sqliteDatabase does.
func sqliteOnly(c *config, what string) error {
	if isPostgres(c.database) {
		return errors.New(what + "; " + pgDumpAdvice)
	}
	return sqliteDatabase(c)
}

// pgDumpAdvice is what backup and restore say on PostgreSQL, where the
// database's own tools do the work.
const pgDumpAdvice = "on PostgreSQL, back up with pg_dump --format=custom and restore with pg_restore into an empty database (docs/operations.md, \"Backups\")"

// backupCmd is `tokend backup`: a consistent copy of the SQLite database,
// taken beside a running server. It opens the database read-only and takes
// no lock of the data directory, so serve goes on writing meanwhile.
func backupCmd(e env) *cobra.Command {
	var c config
	var out string
	var force bool
	storage := pflag.NewFlagSet("storage", pflag.ContinueOnError)
	storage.StringVar(&c.dataDir, "data-dir", "./tokend-data", "data directory of the database to back up (TOKEND_DATA_DIR)")
	storage.StringVar(&c.database, "database", "", "SQLite file to back up; default <data-dir>/tokend.db (TOKEND_DATABASE)")
	cmd := &cobra.Command{
		Use:   "backup --out FILE",
		Short: "Copy the SQLite database to FILE, consistently, while tokend serve runs",
		Long: "Copy the SQLite database to FILE as one moment's commits left it, while tokend serve may keep writing. " +
			"The copy is checked (PRAGMA integrity_check) before it is put in place, atomically, with mode 0600. " +
			"It never holds the pepper: back that up apart (docs/operations.md). On PostgreSQL use pg_dump.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := applyEnv(storage, e.getenv); err != nil {
				return err
			}
			if out == "" {
				return errors.New("--out FILE is required: where to write the backup")
			}
			if err := sqliteOnly(&c, "tokend backup copies SQLite databases"); err != nil {
				return err
			}
			info, err := backup(cmd.Context(), sqlitePath(c), out, force)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(e.stdout, "backed up %s to %s: schema version %d, %d apps, %d tokens, %d audit events, pepper fingerprint %s\n"+
				"The pepper is not in the backup: keep a copy of it apart; restore checks it against this fingerprint.\n",
				sqlitePath(c), out, info.Version, info.Apps, info.Tokens, info.Events, shortFingerprint(info.Settings[pepperFingerprintKey]))
			return err
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&out, "out", "", "file to write the backup to; it must not exist, unless --force")
	fs.BoolVar(&force, "force", false, "replace --out if it exists")
	fs.AddFlagSet(storage)
	return cmd
}

// backup copies the database at src into out through a temporary file
// beside out, checks the copy, syncs it, and renames it into place.
func backup(ctx context.Context, src, out string, force bool) (sqlite.Info, error) {
	if _, err := os.Stat(src); errors.Is(err, fs.ErrNotExist) {
		return sqlite.Info{}, fmt.Errorf("there is no database at %s: give the --data-dir (or --database) that tokend serve uses", src)
	}
	if err := notTheDatabase(src, out); err != nil {
		return sqlite.Info{}, err
	}
	if st, err := os.Lstat(out); err == nil {
		switch {
		case !st.Mode().IsRegular():
			// --force renames over what is there: never a directory, a
			// device (/dev/null as root) or a link.
			return sqlite.Info{}, fmt.Errorf("%s exists and is not a regular file: give another --out", out)
		case !force:
			return sqlite.Info{}, fmt.Errorf("%s exists: give another --out, or --force to replace it", out)
		}
	}
	tmp, release, err := tempBeside(out)
	if err != nil {
		return sqlite.Info{}, err
	}
	defer release()
	defer os.Remove(tmp) // gone by then once renamed
	if err := sqlite.Copy(ctx, src, tmp); err != nil {
		return sqlite.Info{}, err
	}
	info, err := sqlite.Inspect(ctx, tmp)
	if err != nil {
		return sqlite.Info{}, fmt.Errorf("%s cannot be backed up, so %s was not written: its copy failed the check: %w", src, out, err)
	}
	if info.Settings[pepperFingerprintKey] == "" {
		// serve, bootstrap and migrate record it; without it restore
		// could not tell a wrong pepper.
		return sqlite.Info{}, fmt.Errorf("%s records no pepper fingerprint, so a restore could not check its pepper: start tokend (serve or migrate) on it once, which records it, and back up again", src)
	}
	if err := syncFile(tmp); err != nil {
		return sqlite.Info{}, err
	}
	if err := os.Rename(tmp, out); err != nil {
		return sqlite.Info{}, fmt.Errorf("putting the backup in place: %w", err)
	}
	return info, syncDir(filepath.Dir(out))
}

// notTheDatabase refuses an --out that is the database at src or one of
// its companion files: renaming a backup over them under a running server
// would lose every write it makes after.
func notTheDatabase(src, out string) error {
	outInfo, err := os.Stat(out)
	for _, p := range []string{src, src + "-wal", src + "-shm", src + "-journal"} {
		if err == nil {
			if pi, perr := os.Stat(p); perr == nil && os.SameFile(pi, outInfo) {
				return fmt.Errorf("--out %s is the database itself (%s): give a file elsewhere", out, p)
			}
		}
		a, aerr := filepath.Abs(p)
		b, berr := filepath.Abs(out)
		if aerr == nil && berr == nil && a == b {
			return fmt.Errorf("--out %s is the database itself (%s): give a file elsewhere", out, p)
		}
	}
	return nil
}

// tempBeside creates an empty file (0600) in the directory of path, for a
// file that will be renamed to path: a rename within one directory is
// atomic, so path is either absent, the old file or the whole new one.
// The file stays open under an flock until release, which tells a running
// copy from one that a kill -9 left behind: removeLeftTemps, first,
// removes those.
func tempBeside(path string) (tmp string, release func(), err error) {
	// Absolute: SQLite would read a name that starts with "file:" as a URI.
	path, err = filepath.Abs(path)
	if err != nil {
		return "", nil, err
	}
	removeLeftTemps(path)
	raw := make([]byte, 6)
	rand.Read(raw)
	tmp = filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp-"+hex.EncodeToString(raw))
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", nil, fmt.Errorf("creating a file beside %s: %w", path, err)
	}
	if err := tryLock(f); err != nil {
		f.Close()
		os.Remove(tmp)
		return "", nil, fmt.Errorf("locking %s: %w", tmp, err)
	}
	return tmp, func() { f.Close() }, nil
}

// removeLeftTemps removes the temporary files of tempBeside(path) that no
// process holds any more (a backup or restore killed with -9: each is a
// whole or partial copy of a database), with SQLite's companions of them.
// Where flock does not exist it leaves them: a running one could not be
// told apart.
func removeLeftTemps(path string) {
	if !flockWorks {
		return
	}
	temps, _ := filepath.Glob(filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*"))
	for _, tmp := range temps {
		if strings.HasSuffix(tmp, "-journal") || strings.HasSuffix(tmp, "-wal") || strings.HasSuffix(tmp, "-shm") {
			continue
		}
		f, err := os.Open(tmp)
		if err != nil {
			continue
		}
		if tryLock(f) == nil {
			for _, p := range []string{tmp, tmp + "-journal", tmp + "-wal", tmp + "-shm"} {
				os.Remove(p)
			}
		}
		f.Close()
	}
}

// syncFile writes the file at path to stable storage.
func syncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("syncing %s: %w", path, err)
	}
	return f.Close()
}

// syncDir writes the directory dir to stable storage, so that a rename in
// it survives a power loss.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, errors.ErrUnsupported) {
		return fmt.Errorf("syncing %s: %w", dir, err)
	}
	return nil
}

// restoreCmd is `tokend restore`: a backup made by `tokend backup` becomes
// the database of an empty data directory.
func restoreCmd(e env) *cobra.Command {
	var c config
	var from string
	storage := pflag.NewFlagSet("storage", pflag.ContinueOnError)
	storage.StringVar(&c.dataDir, "data-dir", "./tokend-data", "data directory to restore into; it must hold no database (TOKEND_DATA_DIR)")
	storage.StringVar(&c.database, "database", "", "SQLite file to restore to; default <data-dir>/tokend.db (TOKEND_DATABASE)")
	storage.StringVar(&c.pepperFile, "pepper-file", "", "file holding the pepper the backup was made with; default <data-dir>/pepper; TOKEND_PEPPER gives the pepper itself (TOKEND_PEPPER_FILE)")
	cmd := &cobra.Command{
		Use:   "restore --from FILE",
		Short: "Install a backup made by tokend backup into an empty data directory",
		Long: "Install a backup made by tokend backup as the SQLite database of an empty data directory. " +
			"It refuses a data directory that holds a database, a file that is not a sound tokend database or whose schema is newer than this tokend, " +
			"and a pepper (<data-dir>/pepper, --pepper-file or TOKEND_PEPPER) other than the backup's. Stop tokend serve on that directory first.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := applyEnv(storage, e.getenv); err != nil {
				return err
			}
			if from == "" {
				return errors.New("--from FILE is required: the backup to restore")
			}
			if err := sqliteOnly(&c, "tokend restore installs SQLite backups"); err != nil {
				return err
			}
			info, err := restore(cmd.Context(), c, e.getenv, from)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(e.stdout, "restored %s to %s: schema version %d, %d apps, %d tokens, %d audit events; start tokend serve --data-dir %s\n",
				from, sqlitePath(c), info.Version, info.Apps, info.Tokens, info.Events, c.dataDir)
			return err
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&from, "from", "", "the backup file, made by tokend backup")
	fs.AddFlagSet(storage)
	return cmd
}

// restore installs the backup from as the database of c, under the data
// directory's lock: a server cannot start on it meanwhile.
func restore(ctx context.Context, c config, getenv func(string) string, from string) (sqlite.Info, error) {
	if st, err := os.Stat(from); err != nil {
		return sqlite.Info{}, fmt.Errorf("the backup: %w", err)
	} else if !st.Mode().IsRegular() {
		return sqlite.Info{}, fmt.Errorf("the backup %s is not a regular file", from)
	}
	if err := os.MkdirAll(c.dataDir, 0o700); err != nil {
		return sqlite.Info{}, fmt.Errorf("creating the data directory: %w", err)
	}
	path := sqlitePath(c)
	release, err := lockSQLite(c.dataDir, path)
	if err != nil {
		return sqlite.Info{}, err
	}
	defer release()
	// A -wal left beside the target would be replayed onto the restored
	// file: it counts as a database too.
	for _, p := range []string{path, path + "-wal"} {
		if st, err := os.Stat(p); err == nil && st.Size() > 0 {
			return sqlite.Info{}, fmt.Errorf("%s already holds a database (%s): tokend restore never overwrites one. Restore into an empty data directory (or --database file), or move this one away first", c.dataDir, p)
		} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return sqlite.Info{}, err
		}
	}

	// The copy is checked where it will stay, not the file it came from.
	tmp, closeTmp, err := tempBeside(path)
	if err != nil {
		return sqlite.Info{}, err
	}
	defer closeTmp()
	defer func() {
		// Reading a backup made in WAL mode may leave these beside it.
		for _, p := range []string{tmp, tmp + "-wal", tmp + "-shm"} {
			os.Remove(p)
		}
	}()
	if err := copyFile(from, tmp); err != nil {
		return sqlite.Info{}, err
	}
	info, err := sqlite.Inspect(ctx, tmp)
	if err != nil {
		return sqlite.Info{}, fmt.Errorf("%s cannot be restored: %w", from, err)
	}
	if err := checkBackupPepper(c, getenv, from, info); err != nil {
		return sqlite.Info{}, err
	}
	for _, p := range []string{path + "-wal", path + "-shm"} { // empty ones, checked above
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return sqlite.Info{}, err
		}
	}
	if err := os.Rename(tmp, path); err != nil {
		return sqlite.Info{}, fmt.Errorf("putting the database in place: %w", err)
	}
	return info, syncDir(filepath.Dir(path))
}

// checkBackupPepper compares the pepper that serve would use on c with the
// fingerprint the backup recorded, as serve's own start does (checkPepper),
// and never makes a pepper: a new one would leave every token of the
// backup answering NOT_FOUND.
func checkBackupPepper(c config, getenv func(string) string, from string, info sqlite.Info) error {
	want := info.Settings[pepperFingerprintKey]
	if want == "" {
		if info.Tokens == 0 {
			return nil // nothing a pepper must match yet; serve makes one
		}
		return fmt.Errorf("%s holds %d tokens but records no pepper fingerprint, so its pepper cannot be checked: back up with tokend backup, which refuses such a database", from, info.Tokens)
	}
	p, err := readPepper(c, getenv)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s was made with the pepper whose fingerprint is %s, and %s does not exist: "+
			"copy the pepper file backed up with it there (mode 0600), or give it with --pepper-file or TOKEND_PEPPER, and restore again",
			from, shortFingerprint(want), p.path)
	} else if err != nil {
		return err
	}
	if got := pepperFingerprint(p.value); got != want {
		return fmt.Errorf("wrong pepper: %s was made with the pepper whose fingerprint is %s, but %s has the fingerprint %s; "+
			"with it every token would answer NOT_FOUND, so nothing was restored. Give the pepper the backup was made with "+
			"(the pepper file backed up with it, --pepper-file or TOKEND_PEPPER; docs/configuration.md shows how to compute a pepper's fingerprint) and restore again",
			from, shortFingerprint(want), p.source, shortFingerprint(got))
	}
	return nil
}

// copyFile copies the file src into dst (which exists, 0600) and syncs it.
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := out.ReadFrom(in); err != nil {
		out.Close()
		return fmt.Errorf("copying %s: %w", src, err)
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return fmt.Errorf("syncing %s: %w", dst, err)
	}
	return out.Close()
}

// migrateDryRun prints the migrations `tokend migrate` would apply to the
// database of c, having written nothing. It takes no lock: it reads, as
// backup does, beside a running server.
func migrateDryRun(ctx context.Context, c config, e env) error {
	var st sqlstore.MigrationStatus
	var err error
	if isPostgres(c.database) {
		st, err = postgres.MigrationStatus(ctx, c.database)
	} else if err = sqliteDatabase(&c); err == nil {
		st, err = sqlite.MigrationStatus(ctx, sqlitePath(c))
	}
	if err != nil {
		return err
	}
	if len(st.Pending) == 0 {
		_, err = fmt.Fprintf(e.stdout, "the schema is up to date (version %d); nothing to apply\n", st.Current)
		return err
	}
	fmt.Fprintf(e.stdout, "schema version %d; this tokend would apply %d migrations, up to version %d (dry run: nothing applied):\n", st.Current, len(st.Pending), st.Latest)
	for _, m := range st.Pending {
		fmt.Fprintf(e.stdout, "  %05d  %s\n", m.Version, m.Name)
	}
	return nil
}
