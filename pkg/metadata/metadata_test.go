package metadata

import (
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/containerd/errdefs"

	xdv1 "github.com/xstack/xstack/proto/xd/v1"
)

func openTemp(t *testing.T) (*DB, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "meta.db")
	db, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	return db, path
}

func TestValidateName(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"web", true}, {"a.b-c_d", true}, {"0abc", true},
		{"", false}, {"../x", false}, {"a/b", false}, {".hidden", false}, {"-x", false},
		{string(make([]byte, 200)), false}, {"sp ace", false}, {"é", false}, {"a\x00", false},
		{strings.Repeat("a", 128), true}, {strings.Repeat("a", 129), false},
	} {
		err := ValidateName("container id", tc.name)
		if (err == nil) != tc.ok {
			t.Errorf("ValidateName(%q) = %v, want ok=%v", tc.name, err, tc.ok)
		}
		if err != nil && !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("ValidateName(%q) error %v is not InvalidArgument", tc.name, err)
		}
	}
}

// reopen closes db and opens its file again, as a restarted xd does.
func reopen(t *testing.T, db *DB, path string) *DB {
	t.Helper()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func TestContainersPersistAndConflict(t *testing.T) {
	db, path := openTemp(t)
	c := &xdv1.Container{Id: "web", Image: "docker.io/library/busybox:latest", Spec: []byte(`{}`)}
	if err := db.CreateContainer("default", c); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateContainer("default", &xdv1.Container{Id: "web"}); !errors.Is(err, errdefs.ErrAlreadyExists) {
		t.Fatalf("duplicate create: %v, want AlreadyExists", err)
	}
	// Same id in another namespace is another container.
	if err := db.CreateContainer("other", &xdv1.Container{Id: "web"}); err != nil {
		t.Fatal(err)
	}
	if err := db.PutTask("default", &xdv1.Task{ContainerId: "web", Status: xdv1.Status_STOPPED, ExitStatus: 3}); err != nil {
		t.Fatal(err)
	}
	db = reopen(t, db, path)
	defer db.Close()
	got, err := db.GetContainer("default", "web")
	if err != nil || got.Image != c.Image || got.CreatedAt == nil {
		t.Fatalf("after reopen: %v %v", got, err)
	}
	task, err := db.GetTask("default", "web")
	if err != nil || task.ExitStatus != 3 {
		t.Fatalf("task after reopen: %v %v", task, err)
	}
	nss, _ := db.Namespaces()
	if len(nss) != 2 {
		t.Fatalf("namespaces %v", nss)
	}
	if err := db.DeleteContainer("default", "web"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.GetTask("default", "web"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("task record survived its container: %v", err)
	}
	if _, err := db.GetContainer("default", "web"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("get deleted: %v", err)
	}
	if err := db.DeleteContainer("default", "web"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("delete twice: %v", err)
	}
	if list, _ := db.ListContainers("other"); len(list) != 1 {
		t.Fatalf("other namespace: %v", list)
	}
	for ns, want := range map[string][]string{"default": nil, "other": {"web"}, "missing": nil} {
		if ids, err := db.ContainerIDs(ns); err != nil || !slices.Equal(ids, want) {
			t.Errorf("ContainerIDs(%s) = %q, %v; want %q", ns, ids, err, want)
		}
	}
}

func TestImagesKeepCreationTime(t *testing.T) {
	db, _ := openTemp(t)
	defer db.Close()
	img := &xdv1.Image{Name: "docker.io/library/busybox:latest", Target: &xdv1.Descriptor{Digest: "sha256:aa"}}
	created, err := db.PutImage("default", img)
	if err != nil || !created {
		t.Fatalf("first put: %v %v", created, err)
	}
	first := img.CreatedAt.AsTime()
	again := &xdv1.Image{Name: img.Name, Target: &xdv1.Descriptor{Digest: "sha256:bb"}}
	created, err = db.PutImage("default", again)
	if err != nil || created {
		t.Fatalf("second put: %v %v", created, err)
	}
	got, err := db.GetImage("default", img.Name)
	if err != nil || got.Target.Digest != "sha256:bb" || !got.CreatedAt.AsTime().Equal(first) {
		t.Fatalf("updated image: %v %v", got, err)
	}
	if err := db.DeleteImage("default", img.Name); err != nil {
		t.Fatal(err)
	}
	if list, _ := db.ListImages("default"); len(list) != 0 {
		t.Fatalf("images after delete: %v", list)
	}
}

// TestExecs: exec records are listed per container (an id that is another's
// prefix is another container), persist across a reopen, and go with their
// container.
func TestExecs(t *testing.T) {
	db, path := openTemp(t)
	for _, e := range []*xdv1.Task{
		{ContainerId: "c1", ExecId: "a", Tty: true},
		{ContainerId: "c1", ExecId: "b"},
		{ContainerId: "c10", ExecId: "a"},
	} {
		if err := db.PutExec("default", e); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.PutExec("default", &xdv1.Task{ContainerId: "c1", ExecId: "../x"}); err == nil {
		t.Error("PutExec accepted exec id ../x")
	}
	if err := db.CreateContainer("default", &xdv1.Container{Id: "c1"}); err != nil {
		t.Fatal(err)
	}
	db = reopen(t, db, path)
	defer db.Close()
	ids := func(id string) string {
		t.Helper()
		es, err := db.ListExecs("default", id)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range es {
			if e.ContainerId != id {
				t.Errorf("ListExecs(%s) returned an exec of %s", id, e.ContainerId)
			}
			out = append(out, e.ExecId)
		}
		return strings.Join(out, ",")
	}
	if got := ids("c1"); got != "a,b" {
		t.Errorf("execs of c1 = %q, want a,b", got)
	}
	if es, _ := db.ListExecs("default", "c1"); len(es) == 0 || !es[0].Tty {
		t.Errorf("exec a lost its tty flag: %+v", es)
	}
	if err := db.DeleteExec("default", "c1", "a"); err != nil {
		t.Fatal(err)
	}
	if err := db.DeleteExec("default", "c1", "a"); err != nil {
		t.Errorf("deleting a missing exec: %v", err)
	}
	if got := ids("c1"); got != "b" {
		t.Errorf("execs of c1 after delete = %q, want b", got)
	}
	if err := db.DeleteContainer("default", "c1"); err != nil {
		t.Fatal(err)
	}
	if got := ids("c1"); got != "" {
		t.Errorf("execs of a deleted container: %q", got)
	}
	if got := ids("c10"); got != "a" {
		t.Errorf("execs of c10 = %q, want a", got)
	}
	if err := db.DeleteExecs("default", "c10"); err != nil {
		t.Fatal(err)
	}
	if got := ids("c10"); got != "" {
		t.Errorf("execs of c10 after DeleteExecs: %q", got)
	}
	if es, err := db.ListExecs("nons", "c1"); err != nil || len(es) != 0 {
		t.Errorf("ListExecs in an empty namespace = %v, %v", es, err)
	}
}

// TestEndTask: a task's last record and the end of its execs are one
// commit, and dropping the execs of a task that has none commits nothing.
func TestEndTask(t *testing.T) {
	db, _ := openTemp(t)
	defer db.Close()
	commits := func() int {
		t.Helper()
		tx, err := db.db.Begin(false)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback()
		return tx.ID()
	}
	for _, e := range []*xdv1.Task{{ContainerId: "c1", ExecId: "a"}, {ContainerId: "c10", ExecId: "a"}} {
		if err := db.PutExec("default", e); err != nil {
			t.Fatal(err)
		}
	}
	before := commits()
	if err := db.EndTask("default", &xdv1.Task{ContainerId: "c1", Status: xdv1.Status_STOPPED, ExitStatus: 3}); err != nil {
		t.Fatal(err)
	}
	if n := commits() - before; n != 1 {
		t.Errorf("EndTask made %d commits, want 1", n)
	}
	rec, err := db.GetTask("default", "c1")
	if err != nil || rec.Status != xdv1.Status_STOPPED || rec.ExitStatus != 3 {
		t.Errorf("task record after EndTask = %v, %v; want stopped with status 3", rec, err)
	}
	if es, _ := db.ListExecs("default", "c1"); len(es) != 0 {
		t.Errorf("execs of c1 after EndTask: %v", es)
	}
	if es, _ := db.ListExecs("default", "c10"); len(es) != 1 {
		t.Errorf("EndTask of c1 dropped the execs of c10: %v", es)
	}

	before = commits()
	for _, id := range []string{"c1", "none"} {
		if err := db.DeleteExecs("default", id); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.DeleteExecs("other-namespace", "c10"); err != nil {
		t.Fatal(err)
	}
	if n := commits() - before; n != 0 {
		t.Errorf("DeleteExecs without execs made %d commits, want 0", n)
	}
	if err := db.DeleteExecs("default", "c10"); err != nil {
		t.Fatal(err)
	}
	if n := commits() - before; n != 1 {
		t.Errorf("DeleteExecs with an exec made %d commits, want 1", n)
	}
}
