package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// child is one server process, its output going to a log file in the cluster directory.
type child struct {
	name string
	args []string
	bin  string
	log  string
	cmd  *exec.Cmd
	done chan struct{} // closed once the process has exited and been reaped
	err  error         // its exit status, valid after done
}

func startChild(name, bin, logPath string, args []string) (*child, error) {
	out, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	defer out.Close()
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = dieWithParent()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	c := &child{name: name, args: args, bin: bin, log: logPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		c.err = cmd.Wait()
		close(c.done)
	}()
	return c, nil
}

func (c *child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// stop asks the process to terminate and kills it when it has not within grace.
func (c *child) stop(grace time.Duration) {
	if c.exited() {
		return
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(grace):
		_ = c.cmd.Process.Kill()
		<-c.done
	}
}

// failure describes an early exit with the end of the process's log.
func (c *child) failure() error {
	return fmt.Errorf("%s exited (%v); the end of %s:\n%s", c.name, c.err, c.log, tail(c.log, 25))
}

func tail(path string, lines int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	all := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}

// waitHealthy polls url until it answers 200, the process exits or ctx ends.
func waitHealthy(ctx context.Context, c *child, client *http.Client, url string) error {
	for {
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-c.done:
			return c.failure()
		case <-ctx.Done():
			return fmt.Errorf("%s did not answer 200 on %s in time (last: %v); the end of %s:\n%s",
				c.name, url, describe(resp, err), c.log, tail(c.log, 25))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func describe(resp *http.Response, err error) string {
	if err != nil {
		return err.Error()
	}
	return resp.Status
}

// freePorts reserves n distinct loopback ports and releases them for the servers to bind.
// Another process may take one in between; start retries the whole cluster when so.
func freePorts(n int) ([]int, error) {
	var ports []int
	var listeners []net.Listener
	defer func() {
		for _, l := range listeners {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		listeners = append(listeners, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// layout is where a cluster keeps its files.
type layout struct {
	dir        string
	binDir     string
	pki        *pki
	kubeconfig string
	extraArgs  []string // appended to kube-apiserver's flags
}

func (l layout) path(name string) string { return filepath.Join(l.dir, name) }

type cluster struct {
	layout
	etcdURL   string
	server    string
	apiPort   int
	etcd      *child
	apiserver *child
	timings   map[string]int64 // milliseconds
}

func startEtcd(ctx context.Context, l layout, clientPort, peerPort int) (*child, string, error) {
	client := fmt.Sprintf("http://127.0.0.1:%d", clientPort)
	peer := fmt.Sprintf("http://127.0.0.1:%d", peerPort)
	args := []string{
		"--name=default",
		"--data-dir=" + l.path("etcd-data"),
		"--listen-client-urls=" + client,
		"--advertise-client-urls=" + client,
		"--listen-peer-urls=" + peer,
		"--initial-advertise-peer-urls=" + peer,
		"--initial-cluster=default=" + peer,
		"--unsafe-no-fsync", // test data: durability is not wanted, speed is
		"--log-level=warn",
	}
	c, err := startChild("etcd", filepath.Join(l.binDir, "etcd"), l.path("etcd.log"), args)
	if err != nil {
		return nil, "", err
	}
	if err := waitHealthy(ctx, c, http.DefaultClient, client+"/health"); err != nil {
		c.stop(5 * time.Second)
		return nil, "", err
	}
	return c, client, nil
}

func apiserverArgs(l layout, etcdURL string, port int) []string {
	args := []string{
		"--etcd-servers=" + etcdURL,
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(port),
		"--tls-cert-file=" + l.pki.servingCert,
		"--tls-private-key-file=" + l.pki.servingKey,
		"--client-ca-file=" + l.pki.caCert,
		"--authorization-mode=RBAC",
		"--service-account-issuer=https://kubernetes.default.svc",
		"--service-account-key-file=" + l.pki.serviceAcctPub,
		"--service-account-signing-key-file=" + l.pki.serviceAcctKey,
		"--service-cluster-ip-range=10.0.0.0/24",
		// No controller-manager runs, so nothing would create the default ServiceAccount
		// this admission plugin waits for; TokenRequest does not need it.
		"--disable-admission-plugins=ServiceAccount",
		// One server with no other clients: no endpoint bookkeeping, no fairness queues.
		"--endpoint-reconciler-type=none",
		"--enable-priority-and-fairness=false",
		"--profiling=false",
		"--audit-policy-file=" + l.path("audit-policy.yaml"),
		"--audit-log-path=" + l.path("audit.log"),
		"--audit-log-maxbackup=1",
	}
	return append(args, l.extraArgs...)
}

// auditPolicy records every write (not reads, not the server's own bookkeeping), so a
// test can count what a client changed.
const auditPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
  - level: None
    verbs: ["get", "list", "watch"]
  - level: None
    users: ["system:apiserver"]
  - level: Metadata
`

func startAPIServer(ctx context.Context, l layout, etcdURL string, port int) (*child, error) {
	c, err := startChild("kube-apiserver", filepath.Join(l.binDir, "kube-apiserver"),
		l.path("kube-apiserver.log"), apiserverArgs(l, etcdURL, port))
	if err != nil {
		return nil, err
	}
	client, err := adminHTTPClient(l.pki)
	if err != nil {
		c.stop(5 * time.Second)
		return nil, err
	}
	if err := waitHealthy(ctx, c, client, fmt.Sprintf("https://127.0.0.1:%d/readyz", port)); err != nil {
		c.stop(5 * time.Second)
		return nil, err
	}
	return c, nil
}

// adminHTTPClient talks to the API server as the admin, verifying its certificate.
func adminHTTPClient(p *pki) (*http.Client, error) {
	ca, err := os.ReadFile(p.caCert)
	if err != nil {
		return nil, err
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(ca) {
		return nil, errors.New("the generated CA does not parse")
	}
	cert, err := tls.LoadX509KeyPair(p.adminCert, p.adminKey)
	if err != nil {
		return nil, err
	}
	transport := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{cert}}}
	return &http.Client{Transport: transport, Timeout: 5 * time.Second}, nil
}

// startCluster starts etcd, then kube-apiserver, on fresh loopback ports. A port taken
// between reservation and bind makes a server exit at once; that attempt is retried.
func startCluster(ctx context.Context, l layout) (*cluster, error) {
	if err := os.WriteFile(l.path("audit-policy.yaml"), []byte(auditPolicy), 0o600); err != nil {
		return nil, err
	}
	var lastErr error
	for attempt := 1; attempt <= 3; attempt++ {
		c, err := startOnce(ctx, l)
		if err == nil {
			return c, nil
		}
		lastErr = err
		if ctx.Err() != nil || !strings.Contains(err.Error(), "address already in use") {
			break
		}
		_ = os.RemoveAll(l.path("etcd-data"))
	}
	return nil, lastErr
}

func startOnce(ctx context.Context, l layout) (*cluster, error) {
	ports, err := freePorts(3)
	if err != nil {
		return nil, err
	}
	c := &cluster{layout: l, apiPort: ports[2], timings: map[string]int64{}}
	began := time.Now()
	c.etcd, c.etcdURL, err = startEtcd(ctx, l, ports[0], ports[1])
	if err != nil {
		return nil, err
	}
	c.timings["etcd"] = time.Since(began).Milliseconds()
	began = time.Now()
	c.apiserver, err = startAPIServer(ctx, l, c.etcdURL, c.apiPort)
	if err != nil {
		c.etcd.stop(5 * time.Second)
		return nil, err
	}
	c.timings["apiserver"] = time.Since(began).Milliseconds()
	c.server = fmt.Sprintf("https://127.0.0.1:%d", c.apiPort)
	return c, nil
}

// restartAPIServer stops kube-apiserver and starts it again on the same port and etcd:
// clients see their connections and watches break, then the same cluster come back.
func (c *cluster) restartAPIServer(ctx context.Context) error {
	c.apiserver.stop(15 * time.Second)
	began := time.Now()
	next, err := startAPIServer(ctx, c.layout, c.etcdURL, c.apiPort)
	if err != nil {
		return err
	}
	c.apiserver = next
	c.timings["restart"] = time.Since(began).Milliseconds()
	return nil
}

func (c *cluster) stop() {
	if c.apiserver != nil {
		c.apiserver.stop(10 * time.Second)
	}
	if c.etcd != nil {
		c.etcd.stop(10 * time.Second)
	}
}

// writeKubeconfig writes the admin kubeconfig with every credential inline, so it can be
// copied elsewhere and still work.
func (c *cluster) writeKubeconfig() error {
	ca, err := os.ReadFile(c.pki.caCert)
	if err != nil {
		return err
	}
	cert, err := os.ReadFile(c.pki.adminCert)
	if err != nil {
		return err
	}
	key, err := os.ReadFile(c.pki.adminKey)
	if err != nil {
		return err
	}
	config := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
  - name: edgewatch-test
    cluster:
      server: %s
      certificate-authority-data: %s
users:
  - name: %s
    user:
      client-certificate-data: %s
      client-key-data: %s
contexts:
  - name: edgewatch-test
    context:
      cluster: edgewatch-test
      user: %s
      namespace: default
current-context: edgewatch-test
`, c.server, b64(ca), adminUser, b64(cert), b64(key), adminUser)
	return os.WriteFile(c.kubeconfig, []byte(config), 0o600)
}
