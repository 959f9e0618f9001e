# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_kubectl_oulogin_global_optspecs
    string join \n kubeconfig= context= host= certificate-authority= certificate-authority-data= no-browser browser-command= port= timeout= force auth-provider isolated shell= v/verbose h/help V/version
end

function __fish_kubectl_oulogin_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_kubectl_oulogin_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_kubectl_oulogin_using_subcommand
    set -l cmd (__fish_kubectl_oulogin_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c kubectl-oulogin -n "__fish_kubectl_oulogin_needs_command" -l kubeconfig -d 'Use this kubeconfig file instead of the KUBECONFIG rules' -r -F
complete -c kubectl-oulogin -n "__fish_kubectl_oulogin_needs_command" -l context -d 'The context to act on: to log in (again) for, to log out of, to show. With `--host`, the name of the new context' -r
complete -c kubectl-oulogin -n "__fish_kubectl_oulogin_needs_command" -l host -d 'OpenUnison host, `HOST[:PORT]`; `https://` is implied' -r
complete -c kubectl-oulogin -n "__fish_kubectl_oulogin_needs_command" -l certificate-authority -d 'Extra CA certificate (PEM) to trust for the OpenUnison host, on top of the system roots' -r -F
complete -c kubectl-oulogin -n "__fish_kubectl_oulogin_needs_command" -l certificate-authority-data -d 'The same as `--certificate-authority`, as base64 PEM (as in a kubeconfig); both may be given' -r
complete -c kubectl-oulogin -n "__fish_kubectl_oulogin_needs_command" -l browser-command -d 'Open the login URL with this command (split like a shell would; the URL is appended)' -r
complete -c kubectl-oulogin -n "__fish_kubectl_oulogin_needs_command" -l port -d 'Loopback port for the browser redirect (OpenUnison registers 8400; default: the port the session was created with, else 8400)' -r
complete -c kubectl-oulogin -n "__fish_kubectl_oulogin_needs_command" -l timeout -d 'How long to wait for the browser login' -r
complete -c kubectl-oulogin -n "__fish_kubectl_oulogin_needs_command" -l shell -d 'The shell whose syntax `--isolated` prints: `sh` (also `bash`, `zsh`), `fish`, `powershell` (also `pwsh`) or `cmd` [default: powershell on Windows, else sh]' -r -f -a "sh\t''
fish\t''
powershell\t''
cmd\t''"
complete -c kubectl-oulogin -n "__fish_kubectl_oulogin_needs_command" -l no-browser -d 'Do not open a browser: print the URL, and accept the final redirect URL pasted on stdin'
complete -c kubectl-oulogin -n "__fish_kubectl_oulogin_needs_command" -l force -d 'Log in even if the existing session still works'
complete -c kubectl-oulogin -n "__fish_kubectl_oulogin_needs_command" -l auth-provider -d 'Write the legacy in-tree `auth-provider: oidc` user instead of an exec stanza (race-prone)'
complete -c kubectl-oulogin -n "__fish_kubectl_oulogin_needs_command" -l isolated -d 'Log in to a fresh private kubeconfig with its own OpenUnison session, and print the line that sets KUBECONFIG to it on stdout (`export KUBECONFIG=<path>` for `eval`; see `--shell`)'
complete -c kubectl-oulogin -n "__fish_kubectl_oulogin_needs_command" -s v -l verbose -d 'Debug output on stderr; repeat for more (`OULOGIN_DEBUG=1` or `2` does the same)'
complete -c kubectl-oulogin -n "__fish_kubectl_oulogin_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c kubectl-oulogin -n "__fish_kubectl_oulogin_needs_command" -s V -l version -d 'Print version'
complete -c kubectl-oulogin -n "__fish_kubectl_oulogin_needs_command" -f -a "exec" -d 'Run a command with its own fresh kubeconfig and OpenUnison session, removed again when the command exits'
complete -c kubectl-oulogin -n "__fish_kubectl_oulogin_needs_command" -f -a "token" -d 'The exec credential plugin that kubeconfigs written by this tool call'
complete -c kubectl-oulogin -n "__fish_kubectl_oulogin_needs_command" -f -a "status" -d 'Show the contexts this tool manages and the state of their sessions'
complete -c kubectl-oulogin -n "__fish_kubectl_oulogin_needs_command" -f -a "logout" -d 'Remove the local session and the credentials of a context'
complete -c kubectl-oulogin -n "__fish_kubectl_oulogin_needs_command" -f -a "completion" -d 'Print a shell completion script'
complete -c kubectl-oulogin -n "__fish_kubectl_oulogin_needs_command" -f -a "version" -d 'Print the version, as `--version` does'
complete -c kubectl-oulogin -n "__fish_kubectl_oulogin_needs_command" -f -a "__complete" -d 'Answer kubectl\'s plugin completion protocol (used by `kubectl_complete-oulogin`)'
complete -c kubectl-oulogin -n "__fish_kubectl_oulogin_needs_command" -f -a "__man" -d 'Print the man page (roff) on stdout'
complete -c kubectl-oulogin -n "__fish_kubectl_oulogin_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c kubectl-oulogin -n "__fish_kubectl_oulogin_using_subcommand exec" -l host -d 'OpenUnison host, `HOST[:PORT]`; `https://` is implied' -r
complete -c kubectl-oulogin -n "__fish_kubectl_oulogin_using_subcommand exec" -l certificate-authority -d 'Extra CA certificate (PEM) to trust for the OpenUnison host, on top of the system roots' -r -F
complete -c kubectl-oulogin -n "__fish_kubectl_oulogin_using_subcommand exec" -l certificate-authority-data -d 'The same as `--certificate-authority`, as base64 PEM (as in a kubeconfig); both may be given' -r
complete -c kubectl-oulogin -n "__fish_kubectl_oulogin_using_subcommand exec" -l browser-command -d 'Open the login URL with this command (split like a shell would; the URL is appended)' -r
complete -c kubectl-oulogin -n "__fish_kubectl_oulogin_using_subcommand exec" -l port -d 'Loopback port for the browser redirect (OpenUnison registers 8400; default: the port the session was created with, else 8400)' -r
complete -c kubectl-oulogin -n "__fish_kubectl_oulogin_using_subcommand exec" -l timeout -d 'How long to wait for the browser login' -r
complete -c kubectl-oulogin -n "__fish_kubectl_oulogin_using_subcommand exec" -l kubeconfig -d 'Use this kubeconfig file instead of the KUBECONFIG rules' -r -F
complete -c kubectl-oulogin -n "__fish_kubectl_oulogin_using_subcommand exec" -l context -d 'The context to act on: to log in (again) for, to log out of, to show. With `--host`, the name of the new context' -r
complete -c kubectl-oulogin -n "__fish_kubectl_oulogin_using_subcommand exec" -l no-browser -d 'Do not open a browser: print the URL, and accept the final redirect URL pasted on stdin'
complete -c kubectl-oulogin -n "__fish_kubectl_oulogin_using_subcommand exec" -l force -d 'Log in even if the existing session still works'
complete -c kubectl-oulogin -n "__fish_kubectl_oulogin_using_subcommand exec" -l auth-provider -d 'Write the legacy in-tree `auth-provider: oidc` user instead of an exec stanza (race-prone)'
complete -c kubectl-oulogin -n "__fish_kubectl_oulogin_using_subcommand exec" -s v -l verbose -d 'Debug output on stderr; repeat for more (`OULOGIN_DEBUG=1` or `2` does the same)'
complete -c kubectl-oulogin -n "__fish_kubectl_oulogin_using_subcommand exec" -s h -l help -d 'Print help'
complete -c kubectl-oulogin -n "__fish_kubectl_oulogin_using_subcommand token" -l session -d 'Name of a session under `$KUBECACHEDIR/oulogin/`' -r
complete -c kubectl-oulogin -n "__fish_kubectl_oulogin_using_subcommand token" -l session-file -d 'Path of a session file (isolated kubeconfigs keep theirs beside them)' -r -F
complete -c kubectl-oulogin -n "__fish_kubectl_oulogin_using_subcommand token" -l host -d 'OpenUnison host of the session, used in messages when the session is missing' -r
complete -c kubectl-oulogin -n "__fish_kubectl_oulogin_using_subcommand token" -l kubeconfig -d 'Use this kubeconfig file instead of the KUBECONFIG rules' -r -F
complete -c kubectl-oulogin -n "__fish_kubectl_oulogin_using_subcommand token" -l context -d 'The context to act on: to log in (again) for, to log out of, to show. With `--host`, the name of the new context' -r
complete -c kubectl-oulogin -n "__fish_kubectl_oulogin_using_subcommand token" -l logged-out -d 'Written by `logout`: fail at once, naming the command that logs in again'
complete -c kubectl-oulogin -n "__fish_kubectl_oulogin_using_subcommand token" -s v -l verbose -d 'Debug output on stderr; repeat for more (`OULOGIN_DEBUG=1` or `2` does the same)'
complete -c kubectl-oulogin -n "__fish_kubectl_oulogin_using_subcommand token" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c kubectl-oulogin -n "__fish_kubectl_oulogin_using_subcommand status" -s o -l output -d 'Output format: `wide` adds the session file, the server session\'s inactivity timeout and the groups; `name` prints context names only' -r -f -a "table\t''
wide\t''
name\t''
json\t''
yaml\t''"
complete -c kubectl-oulogin -n "__fish_kubectl_oulogin_using_subcommand status" -l kubeconfig -d 'Use this kubeconfig file instead of the KUBECONFIG rules' -r -F
complete -c kubectl-oulogin -n "__fish_kubectl_oulogin_using_subcommand status" -l context -d 'The context to act on: to log in (again) for, to log out of, to show. With `--host`, the name of the new context' -r
complete -c kubectl-oulogin -n "__fish_kubectl_oulogin_using_subcommand status" -l check -d 'Ask OpenUnison whether each session is still alive (costs one refresh per session); exit 1 when one is not'
complete -c kubectl-oulogin -n "__fish_kubectl_oulogin_using_subcommand status" -s v -l verbose -d 'Debug output on stderr; repeat for more (`OULOGIN_DEBUG=1` or `2` does the same)'
complete -c kubectl-oulogin -n "__fish_kubectl_oulogin_using_subcommand status" -s h -l help -d 'Print help'
complete -c kubectl-oulogin -n "__fish_kubectl_oulogin_using_subcommand logout" -l kubeconfig -d 'Use this kubeconfig file instead of the KUBECONFIG rules' -r -F
complete -c kubectl-oulogin -n "__fish_kubectl_oulogin_using_subcommand logout" -l context -d 'The context to act on: to log in (again) for, to log out of, to show. With `--host`, the name of the new context' -r
complete -c kubectl-oulogin -n "__fish_kubectl_oulogin_using_subcommand logout" -l all -d 'Log out of every context this tool manages (instead of `--context NAME`, default: the current one)'
complete -c kubectl-oulogin -n "__fish_kubectl_oulogin_using_subcommand logout" -l purge -d 'Also remove the context and cluster entries, not only the credentials'
complete -c kubectl-oulogin -n "__fish_kubectl_oulogin_using_subcommand logout" -s v -l verbose -d 'Debug output on stderr; repeat for more (`OULOGIN_DEBUG=1` or `2` does the same)'
complete -c kubectl-oulogin -n "__fish_kubectl_oulogin_using_subcommand logout" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c kubectl-oulogin -n "__fish_kubectl_oulogin_using_subcommand completion" -l kubeconfig -d 'Use this kubeconfig file instead of the KUBECONFIG rules' -r -F
complete -c kubectl-oulogin -n "__fish_kubectl_oulogin_using_subcommand completion" -l context -d 'The context to act on: to log in (again) for, to log out of, to show. With `--host`, the name of the new context' -r
complete -c kubectl-oulogin -n "__fish_kubectl_oulogin_using_subcommand completion" -s v -l verbose -d 'Debug output on stderr; repeat for more (`OULOGIN_DEBUG=1` or `2` does the same)'
complete -c kubectl-oulogin -n "__fish_kubectl_oulogin_using_subcommand completion" -s h -l help -d 'Print help'
complete -c kubectl-oulogin -n "__fish_kubectl_oulogin_using_subcommand version" -l kubeconfig -d 'Use this kubeconfig file instead of the KUBECONFIG rules' -r -F
complete -c kubectl-oulogin -n "__fish_kubectl_oulogin_using_subcommand version" -l context -d 'The context to act on: to log in (again) for, to log out of, to show. With `--host`, the name of the new context' -r
complete -c kubectl-oulogin -n "__fish_kubectl_oulogin_using_subcommand version" -s v -l verbose -d 'Debug output on stderr; repeat for more (`OULOGIN_DEBUG=1` or `2` does the same)'
complete -c kubectl-oulogin -n "__fish_kubectl_oulogin_using_subcommand version" -s h -l help -d 'Print help'
complete -c kubectl-oulogin -n "__fish_kubectl_oulogin_using_subcommand __complete" -l kubeconfig -d 'Use this kubeconfig file instead of the KUBECONFIG rules' -r -F
complete -c kubectl-oulogin -n "__fish_kubectl_oulogin_using_subcommand __complete" -l context -d 'The context to act on: to log in (again) for, to log out of, to show. With `--host`, the name of the new context' -r
complete -c kubectl-oulogin -n "__fish_kubectl_oulogin_using_subcommand __complete" -s v -l verbose -d 'Debug output on stderr; repeat for more (`OULOGIN_DEBUG=1` or `2` does the same)'
complete -c kubectl-oulogin -n "__fish_kubectl_oulogin_using_subcommand __man" -l kubeconfig -d 'Use this kubeconfig file instead of the KUBECONFIG rules' -r -F
complete -c kubectl-oulogin -n "__fish_kubectl_oulogin_using_subcommand __man" -l context -d 'The context to act on: to log in (again) for, to log out of, to show. With `--host`, the name of the new context' -r
complete -c kubectl-oulogin -n "__fish_kubectl_oulogin_using_subcommand __man" -s v -l verbose -d 'Debug output on stderr; repeat for more (`OULOGIN_DEBUG=1` or `2` does the same)'
complete -c kubectl-oulogin -n "__fish_kubectl_oulogin_using_subcommand __man" -s h -l help -d 'Print help'
complete -c kubectl-oulogin -n "__fish_kubectl_oulogin_using_subcommand help; and not __fish_seen_subcommand_from exec token status logout completion version __complete __man help" -f -a "exec" -d 'Run a command with its own fresh kubeconfig and OpenUnison session, removed again when the command exits'
complete -c kubectl-oulogin -n "__fish_kubectl_oulogin_using_subcommand help; and not __fish_seen_subcommand_from exec token status logout completion version __complete __man help" -f -a "token" -d 'The exec credential plugin that kubeconfigs written by this tool call'
complete -c kubectl-oulogin -n "__fish_kubectl_oulogin_using_subcommand help; and not __fish_seen_subcommand_from exec token status logout completion version __complete __man help" -f -a "status" -d 'Show the contexts this tool manages and the state of their sessions'
complete -c kubectl-oulogin -n "__fish_kubectl_oulogin_using_subcommand help; and not __fish_seen_subcommand_from exec token status logout completion version __complete __man help" -f -a "logout" -d 'Remove the local session and the credentials of a context'
complete -c kubectl-oulogin -n "__fish_kubectl_oulogin_using_subcommand help; and not __fish_seen_subcommand_from exec token status logout completion version __complete __man help" -f -a "completion" -d 'Print a shell completion script'
complete -c kubectl-oulogin -n "__fish_kubectl_oulogin_using_subcommand help; and not __fish_seen_subcommand_from exec token status logout completion version __complete __man help" -f -a "version" -d 'Print the version, as `--version` does'
complete -c kubectl-oulogin -n "__fish_kubectl_oulogin_using_subcommand help; and not __fish_seen_subcommand_from exec token status logout completion version __complete __man help" -f -a "__complete" -d 'Answer kubectl\'s plugin completion protocol (used by `kubectl_complete-oulogin`)'
complete -c kubectl-oulogin -n "__fish_kubectl_oulogin_using_subcommand help; and not __fish_seen_subcommand_from exec token status logout completion version __complete __man help" -f -a "__man" -d 'Print the man page (roff) on stdout'
complete -c kubectl-oulogin -n "__fish_kubectl_oulogin_using_subcommand help; and not __fish_seen_subcommand_from exec token status logout completion version __complete __man help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
