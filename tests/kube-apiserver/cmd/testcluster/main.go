// Command testcluster runs a throw-away Kubernetes control plane for edgewatch's tests
// and for scripts/dev-cluster: etcd and the real kube-apiserver (built next to it by
// scripts/build-kube-apiserver) on free loopback ports, with generated certificates,
// RBAC authorization, a ServiceAccount token issuer and an audit log of writes.
//
// When the API server answers /readyz it writes an admin kubeconfig and prints one JSON
// line on stdout ({"event":"ready",...}). It then runs until its stdin reaches end of
// file (-until=stdin, the default: the test process that started it has exited, however
// it exited) or until SIGTERM/SIGINT (-until=signal, for a developer's background
// cluster). Either way it stops both servers; they also die with it if it is killed,
// so no server outlives the process that asked for it.
//
// With -until=stdin, the line "restart-apiserver" on stdin restarts kube-apiserver on
// the same port and etcd, and prints {"event":"restarted",...}.
package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"
)

func init() {
	// Servers are started from the main goroutine; pinning it to the main thread makes
	// that thread their parent for the parent-death signal (see dieWithParent).
	runtime.LockOSThread()
}

type options struct {
	dir          string
	binDir       string
	until        string
	cleanup      bool
	startTimeout time.Duration
	extraArgs    repeated
}

// repeated collects a flag given several times.
type repeated []string

func (r *repeated) String() string     { return strings.Join(*r, " ") }
func (r *repeated) Set(v string) error { *r = append(*r, v); return nil }

func main() {
	var o options
	self, _ := os.Executable()
	flag.StringVar(&o.dir, "dir", "", "directory for certificates, etcd data, logs and the kubeconfig (created)")
	flag.StringVar(&o.binDir, "bin-dir", filepath.Dir(self), "directory holding the etcd and kube-apiserver binaries")
	flag.StringVar(&o.until, "until", "stdin", "run until stdin reaches EOF (stdin) or until SIGTERM/SIGINT (signal)")
	flag.BoolVar(&o.cleanup, "cleanup", false, "remove -dir when stopping")
	flag.DurationVar(&o.startTimeout, "start-timeout", 3*time.Minute, "how long each server may take to become ready")
	flag.Var(&o.extraArgs, "apiserver-arg", "an extra kube-apiserver flag such as --default-watch-cache-size=0 (repeatable; later flags win)")
	flag.Parse()
	if o.dir == "" || (o.until != "stdin" && o.until != "signal") {
		flag.Usage()
		os.Exit(2)
	}
	os.Exit(run(o))
}

func run(o options) int {
	began := time.Now()
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	// The reader of stdout/stderr may be gone (its process killed): a failed write must
	// not kill this program before it has stopped the servers.
	signal.Ignore(syscall.SIGPIPE)
	if o.cleanup {
		defer os.RemoveAll(o.dir)
	}
	dir, err := filepath.Abs(o.dir)
	if err != nil {
		return fail(err)
	}
	p, err := writePKI(filepath.Join(dir, "pki"))
	if err != nil {
		return fail(fmt.Errorf("generating certificates: %w", err))
	}
	l := layout{dir: dir, binDir: o.binDir, pki: p, kubeconfig: filepath.Join(dir, "admin.kubeconfig"), extraArgs: o.extraArgs}
	ctx, cancel := context.WithTimeout(context.Background(), o.startTimeout)
	c, err := startCluster(ctx, l)
	cancel()
	if err != nil {
		return fail(err)
	}
	defer c.stop()
	if err := c.writeKubeconfig(); err != nil {
		return fail(err)
	}
	c.timings["total"] = time.Since(began).Milliseconds()
	announce(c, "ready")
	fmt.Fprintf(os.Stderr, "testcluster: kube-apiserver ready at %s in %.1fs (etcd %.1fs); kubeconfig %s, logs in %s\n",
		c.server, seconds(c.timings["total"]), seconds(c.timings["etcd"]), c.kubeconfig, dir)
	return serve(o, c, stop)
}

// serve waits for the end: stdin EOF or a signal, or a server that dies on its own.
func serve(o options, c *cluster, stop <-chan os.Signal) int {
	commands := make(chan string)
	if o.until == "stdin" {
		go readCommands(commands)
	}
	for {
		select {
		case <-stop:
			return 0
		case command, open := <-commands:
			if !open {
				return 0
			}
			if command != "restart-apiserver" {
				fmt.Fprintf(os.Stderr, "testcluster: unknown command %q ignored\n", command)
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), o.startTimeout)
			err := c.restartAPIServer(ctx)
			cancel()
			if err != nil {
				return fail(fmt.Errorf("restarting kube-apiserver: %w", err))
			}
			announce(c, "restarted")
		case <-c.etcd.done:
			return fail(c.etcd.failure())
		case <-c.apiserver.done:
			return fail(c.apiserver.failure())
		}
	}
}

// readCommands forwards stdin's lines and closes the channel at EOF (or on a read error,
// which also means the parent is gone).
func readCommands(commands chan<- string) {
	scanner := bufio.NewScanner(os.Stdin)
	for scanner.Scan() {
		commands <- scanner.Text()
	}
	close(commands)
}

type announcement struct {
	Event      string           `json:"event"`
	Server     string           `json:"server"`
	Kubeconfig string           `json:"kubeconfig"`
	Dir        string           `json:"dir"`
	AuditLog   string           `json:"auditLog"`
	Pids       map[string]int   `json:"pids"`
	Millis     map[string]int64 `json:"millis"`
}

func announce(c *cluster, event string) {
	line, _ := json.Marshal(announcement{
		Event:      event,
		Server:     c.server,
		Kubeconfig: c.kubeconfig,
		Dir:        c.dir,
		AuditLog:   c.path("audit.log"),
		Pids: map[string]int{
			"testcluster":    os.Getpid(),
			"etcd":           c.etcd.cmd.Process.Pid,
			"kube-apiserver": c.apiserver.cmd.Process.Pid,
		},
		Millis: c.timings,
	})
	fmt.Println(string(line))
}

func fail(err error) int {
	fmt.Fprintf(os.Stderr, "testcluster: %v\n", err)
	return 1
}

func seconds(ms int64) float64 { return float64(ms) / 1000 }

func b64(data []byte) string { return base64.StdEncoding.EncodeToString(data) }
