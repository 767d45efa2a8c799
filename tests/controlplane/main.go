// Command controlplane is one binary for the real Kubernetes control plane the tests and the demo run
// on: `controlplane NAME ARGS…` runs kube-apiserver, kube-controller-manager, kube-scheduler, etcd or
// kwok (which plays the kubelet) with that component's own command line. One binary links the shared
// Kubernetes libraries once, as hyperkube and k3s do, so the build and its cache stay small.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.etcd.io/etcd/server/v3/etcdmain"
	"k8s.io/component-base/cli"
	apiserver "k8s.io/kubernetes/cmd/kube-apiserver/app"
	controllermanager "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	scheduler "k8s.io/kubernetes/cmd/kube-scheduler/app"
	nodefast "sigs.k8s.io/kwok/kustomize/stage/node/fast"
	nodeheartbeat "sigs.k8s.io/kwok/kustomize/stage/node/heartbeat-with-lease"
	podfast "sigs.k8s.io/kwok/kustomize/stage/pod/fast"
	kwokconfig "sigs.k8s.io/kwok/pkg/config"
	kwokcmd "sigs.k8s.io/kwok/pkg/kwok/cmd"
	kwoklog "sigs.k8s.io/kwok/pkg/log"
	"sigs.k8s.io/kwok/pkg/utils/signals"
)

const usage = "usage: controlplane kube-apiserver|kube-controller-manager|kube-scheduler|etcd|kwok|kwok-stages [ARGS…]"

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, usage)
		os.Exit(2)
	}
	name, args := os.Args[1], os.Args[2:]
	switch name {
	case "kube-apiserver":
		os.Exit(runCobra(apiserver.NewAPIServerCommand(), args))
	case "kube-controller-manager":
		os.Exit(runCobra(controllermanager.NewControllerManagerCommand(), args))
	case "kube-scheduler":
		os.Exit(runCobra(scheduler.NewSchedulerCommand(), args))
	case "etcd":
		// etcd reads its own os.Args: hand it a command line that starts with its name.
		etcdmain.Main(append([]string{"etcd"}, args...))
	case "kwok":
		os.Exit(runKwok(args))
	case "kwok-stages":
		// KWOK's own default stages (node initialise and heartbeat with a Lease; pod ready, complete and
		// delete), for its --config: the launcher writes them out beside any stage of its own.
		for _, stage := range []string{
			nodefast.DefaultNodeInit, nodeheartbeat.DefaultNodeHeartbeatWithLease,
			podfast.DefaultPodReady, podfast.DefaultPodComplete, podfast.DefaultPodDelete,
		} {
			fmt.Printf("---\n%s\n", stage)
		}
	default:
		fmt.Fprintf(os.Stderr, "controlplane: unknown component %q\n%s\n", name, usage)
		os.Exit(2)
	}
}

func runCobra(command *cobra.Command, args []string) int {
	command.SetArgs(args)
	return cli.Run(command)
}

// runKwok is kwok's own main (sigs.k8s.io/kwok/cmd/kwok), which cannot be imported.
func runKwok(args []string) int {
	// Kubernetes' verflag registers a non-boolean --version on pflag.CommandLine at init, and cobra
	// merges that set into every root command, where it clashes with kwok's own --version.
	pflag.CommandLine = pflag.NewFlagSet("kwok", pflag.ExitOnError)
	flagset := pflag.NewFlagSet("global", pflag.ContinueOnError)
	flagset.ParseErrorsAllowlist.UnknownFlags = true
	flagset.Usage = func() {}
	// kwok's flag helpers read os.Args; make them kwok's own.
	os.Args = append([]string{"kwok"}, args...)
	ctx := signals.SetupSignalContext()
	ctx, logger := kwoklog.InitFlags(ctx, flagset)
	ctx, err := kwokconfig.InitFlags(ctx, flagset)
	if err != nil {
		logger.Error("Init config flags", "err", err)
		return 1
	}
	command := kwokcmd.NewCommand(ctx)
	command.PersistentFlags().AddFlagSet(flagset)
	command.SetArgs(args)
	if err := command.ExecuteContext(ctx); err != nil {
		logger.Error("Execute exit", "err", err)
		return 1
	}
	return 0
}
