package xctl

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	xdv1 "github.com/xstack/xstack/proto/xd/v1"
)

// runImport is `xctl images import`: Images.Import of the archive's
// absolute path (xd reads it from its own filesystem).
func runImport(ctx context.Context, e *env, fs *flagSet, args []string) error {
	path, err := filepath.Abs(args[0])
	if err != nil {
		return err
	}
	c, err := e.connect()
	if err != nil {
		return err
	}
	r, err := c.Images().Import(ctx, &xdv1.ImportRequest{Path: path, Name: fs.str("name")})
	if err != nil {
		return err
	}
	for _, img := range r.Images {
		fmt.Fprintln(e.stdout, img.Name)
	}
	return nil
}

// runPull is `xctl images pull`: the Images.Pull progress stream.
func runPull(ctx context.Context, e *env, fs *flagSet, args []string) error {
	req := &xdv1.PullRequest{Ref: args[0], PlainHttp: fs.boolean("plain-http"), InsecureSkipVerify: fs.boolean("insecure")}
	if u := fs.str("user"); u != "" {
		user, pass, ok := strings.Cut(u, ":")
		if !ok || user == "" {
			return usagef("invalid --user %q: want USER:PASSWORD", u)
		}
		req.Username, req.Password = user, pass
	}
	c, err := e.connect()
	if err != nil {
		return err
	}
	req.Namespace = c.Namespace()
	stream, err := c.Images().Pull(ctx, req)
	if err != nil {
		return err
	}
	_, tty := terminalFd(e.stdout)
	prog := newPullProgress(e.stdout, args[0], tty)
	var img *xdv1.Image
	for {
		m, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		prog.update(m)
		if m.Image != nil {
			img = m.Image
		}
	}
	if img == nil {
		return fmt.Errorf("pull of %s ended without an image", args[0])
	}
	fmt.Fprintf(e.stdout, "Digest: %s\n%s\n", img.GetTarget().GetDigest(), img.Name)
	return nil
}

// imageRow is one line of images ls, also its --format json object.
type imageRow struct {
	Name      string    `json:"name"`
	Digest    string    `json:"digest"`
	Size      int64     `json:"size"`
	CreatedAt time.Time `json:"created_at"`
	ChainID   string    `json:"chain_id,omitempty"`
}

// runImages is `xctl images ls`: Images.List.
func runImages(ctx context.Context, e *env, fs *flagSet, args []string) error {
	asJSON, err := wantJSON(fs, "table")
	if err != nil {
		return err
	}
	c, err := e.connect()
	if err != nil {
		return err
	}
	r, err := c.Images().List(ctx, &xdv1.ListImagesRequest{})
	if err != nil {
		return err
	}
	rows := []imageRow{}
	for _, img := range r.Images {
		row := imageRow{Name: img.Name, Digest: img.GetTarget().GetDigest(), Size: img.Size, ChainID: img.ChainId}
		if img.CreatedAt != nil {
			row.CreatedAt = img.CreatedAt.AsTime()
		}
		rows = append(rows, row)
	}
	switch {
	case fs.boolean("quiet"):
		for _, r := range rows {
			fmt.Fprintln(e.stdout, r.Name)
		}
	case asJSON:
		return writeJSON(e.stdout, rows)
	default:
		now := time.Now()
		w := tabwriter.NewWriter(e.stdout, 0, 8, 3, ' ', 0)
		fmt.Fprintln(w, "REF\tDIGEST\tSIZE\tCREATED")
		for _, r := range rows {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", r.Name, shortDigest(r.Digest), humanSize(r.Size), ago(r.CreatedAt, now))
		}
		return w.Flush()
	}
	return nil
}

// runRmi is `xctl images rm`: Images.Remove of each name.
func runRmi(ctx context.Context, e *env, fs *flagSet, args []string) error {
	c, err := e.connect()
	if err != nil {
		return err
	}
	return e.forEach(args, func(ref string) error {
		_, err := c.Images().Remove(ctx, &xdv1.RemoveImageRequest{Name: ref})
		return err
	})
}

// runTag is `xctl images tag`: Images.Tag, prints the new name.
func runTag(ctx context.Context, e *env, fs *flagSet, args []string) error {
	c, err := e.connect()
	if err != nil {
		return err
	}
	img, err := c.Images().Tag(ctx, &xdv1.TagImageRequest{Source: args[0], Target: args[1]})
	if err != nil {
		return err
	}
	fmt.Fprintln(e.stdout, img.Name)
	return nil
}
