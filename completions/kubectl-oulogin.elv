
use builtin;
use str;

set edit:completion:arg-completer[kubectl-oulogin] = {|@words|
    fn spaces {|n|
        builtin:repeat $n ' ' | str:join ''
    }
    fn cand {|text desc|
        edit:complex-candidate $text &display=$text' '(spaces (- 14 (wcswidth $text)))$desc
    }
    var command = 'kubectl-oulogin'
    for word $words[1..-1] {
        if (str:has-prefix $word '-') {
            break
        }
        set command = $command';'$word
    }
    var completions = [
        &'kubectl-oulogin'= {
            cand --kubeconfig 'Use this kubeconfig file instead of the KUBECONFIG rules'
            cand --context 'The context to act on: to log in (again) for, to log out of, to show. With `--host`, the name of the new context'
            cand --host 'OpenUnison host, `HOST[:PORT]`; `https://` is implied'
            cand --certificate-authority 'Extra CA certificate (PEM) to trust for the OpenUnison host, on top of the system roots'
            cand --certificate-authority-data 'The same as `--certificate-authority`, as base64 PEM (as in a kubeconfig); both may be given'
            cand --browser-command 'Open the login URL with this command (split like a shell would; the URL is appended)'
            cand --port 'Loopback port for the browser redirect (OpenUnison registers 8400; default: the port the session was created with, else 8400)'
            cand --timeout 'How long to wait for the browser login'
            cand --shell 'The shell whose syntax `--isolated` prints: `sh` (also `bash`, `zsh`), `fish`, `powershell` (also `pwsh`) or `cmd` [default: powershell on Windows, else sh]'
            cand --no-browser 'Do not open a browser: print the URL, and accept the final redirect URL pasted on stdin'
            cand --force 'Log in even if the existing session still works'
            cand --auth-provider 'Write the legacy in-tree `auth-provider: oidc` user instead of an exec stanza (race-prone)'
            cand --isolated 'Log in to a fresh private kubeconfig with its own OpenUnison session, and print the line that sets KUBECONFIG to it on stdout (`export KUBECONFIG=<path>` for `eval`; see `--shell`)'
            cand -v 'Debug output on stderr; repeat for more (`OULOGIN_DEBUG=1` or `2` does the same)'
            cand --verbose 'Debug output on stderr; repeat for more (`OULOGIN_DEBUG=1` or `2` does the same)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
            cand exec 'Run a command with its own fresh kubeconfig and OpenUnison session, removed again when the command exits'
            cand token 'The exec credential plugin that kubeconfigs written by this tool call'
            cand status 'Show the contexts this tool manages and the state of their sessions'
            cand logout 'Remove the local session and the credentials of a context'
            cand completion 'Print a shell completion script'
            cand version 'Print the version, as `--version` does'
            cand __complete 'Answer kubectl''s plugin completion protocol (used by `kubectl_complete-oulogin`)'
            cand __man 'Print the man page (roff) on stdout'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'kubectl-oulogin;exec'= {
            cand --host 'OpenUnison host, `HOST[:PORT]`; `https://` is implied'
            cand --certificate-authority 'Extra CA certificate (PEM) to trust for the OpenUnison host, on top of the system roots'
            cand --certificate-authority-data 'The same as `--certificate-authority`, as base64 PEM (as in a kubeconfig); both may be given'
            cand --browser-command 'Open the login URL with this command (split like a shell would; the URL is appended)'
            cand --port 'Loopback port for the browser redirect (OpenUnison registers 8400; default: the port the session was created with, else 8400)'
            cand --timeout 'How long to wait for the browser login'
            cand --kubeconfig 'Use this kubeconfig file instead of the KUBECONFIG rules'
            cand --context 'The context to act on: to log in (again) for, to log out of, to show. With `--host`, the name of the new context'
            cand --no-browser 'Do not open a browser: print the URL, and accept the final redirect URL pasted on stdin'
            cand --force 'Log in even if the existing session still works'
            cand --auth-provider 'Write the legacy in-tree `auth-provider: oidc` user instead of an exec stanza (race-prone)'
            cand -v 'Debug output on stderr; repeat for more (`OULOGIN_DEBUG=1` or `2` does the same)'
            cand --verbose 'Debug output on stderr; repeat for more (`OULOGIN_DEBUG=1` or `2` does the same)'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'kubectl-oulogin;token'= {
            cand --session 'Name of a session under `$KUBECACHEDIR/oulogin/`'
            cand --session-file 'Path of a session file (isolated kubeconfigs keep theirs beside them)'
            cand --host 'OpenUnison host of the session, used in messages when the session is missing'
            cand --kubeconfig 'Use this kubeconfig file instead of the KUBECONFIG rules'
            cand --context 'The context to act on: to log in (again) for, to log out of, to show. With `--host`, the name of the new context'
            cand --logged-out 'Written by `logout`: fail at once, naming the command that logs in again'
            cand -v 'Debug output on stderr; repeat for more (`OULOGIN_DEBUG=1` or `2` does the same)'
            cand --verbose 'Debug output on stderr; repeat for more (`OULOGIN_DEBUG=1` or `2` does the same)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'kubectl-oulogin;status'= {
            cand -o 'Output format: `wide` adds the session file, the server session''s inactivity timeout and the groups; `name` prints context names only'
            cand --output 'Output format: `wide` adds the session file, the server session''s inactivity timeout and the groups; `name` prints context names only'
            cand --kubeconfig 'Use this kubeconfig file instead of the KUBECONFIG rules'
            cand --context 'The context to act on: to log in (again) for, to log out of, to show. With `--host`, the name of the new context'
            cand --check 'Ask OpenUnison whether each session is still alive (costs one refresh per session); exit 1 when one is not'
            cand -v 'Debug output on stderr; repeat for more (`OULOGIN_DEBUG=1` or `2` does the same)'
            cand --verbose 'Debug output on stderr; repeat for more (`OULOGIN_DEBUG=1` or `2` does the same)'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'kubectl-oulogin;logout'= {
            cand --kubeconfig 'Use this kubeconfig file instead of the KUBECONFIG rules'
            cand --context 'The context to act on: to log in (again) for, to log out of, to show. With `--host`, the name of the new context'
            cand --all 'Log out of every context this tool manages (instead of `--context NAME`, default: the current one)'
            cand --purge 'Also remove the context and cluster entries, not only the credentials'
            cand -v 'Debug output on stderr; repeat for more (`OULOGIN_DEBUG=1` or `2` does the same)'
            cand --verbose 'Debug output on stderr; repeat for more (`OULOGIN_DEBUG=1` or `2` does the same)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'kubectl-oulogin;completion'= {
            cand --kubeconfig 'Use this kubeconfig file instead of the KUBECONFIG rules'
            cand --context 'The context to act on: to log in (again) for, to log out of, to show. With `--host`, the name of the new context'
            cand -v 'Debug output on stderr; repeat for more (`OULOGIN_DEBUG=1` or `2` does the same)'
            cand --verbose 'Debug output on stderr; repeat for more (`OULOGIN_DEBUG=1` or `2` does the same)'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'kubectl-oulogin;version'= {
            cand --kubeconfig 'Use this kubeconfig file instead of the KUBECONFIG rules'
            cand --context 'The context to act on: to log in (again) for, to log out of, to show. With `--host`, the name of the new context'
            cand -v 'Debug output on stderr; repeat for more (`OULOGIN_DEBUG=1` or `2` does the same)'
            cand --verbose 'Debug output on stderr; repeat for more (`OULOGIN_DEBUG=1` or `2` does the same)'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'kubectl-oulogin;__complete'= {
            cand --kubeconfig 'Use this kubeconfig file instead of the KUBECONFIG rules'
            cand --context 'The context to act on: to log in (again) for, to log out of, to show. With `--host`, the name of the new context'
            cand -v 'Debug output on stderr; repeat for more (`OULOGIN_DEBUG=1` or `2` does the same)'
            cand --verbose 'Debug output on stderr; repeat for more (`OULOGIN_DEBUG=1` or `2` does the same)'
        }
        &'kubectl-oulogin;__man'= {
            cand --kubeconfig 'Use this kubeconfig file instead of the KUBECONFIG rules'
            cand --context 'The context to act on: to log in (again) for, to log out of, to show. With `--host`, the name of the new context'
            cand -v 'Debug output on stderr; repeat for more (`OULOGIN_DEBUG=1` or `2` does the same)'
            cand --verbose 'Debug output on stderr; repeat for more (`OULOGIN_DEBUG=1` or `2` does the same)'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'kubectl-oulogin;help'= {
            cand exec 'Run a command with its own fresh kubeconfig and OpenUnison session, removed again when the command exits'
            cand token 'The exec credential plugin that kubeconfigs written by this tool call'
            cand status 'Show the contexts this tool manages and the state of their sessions'
            cand logout 'Remove the local session and the credentials of a context'
            cand completion 'Print a shell completion script'
            cand version 'Print the version, as `--version` does'
            cand __complete 'Answer kubectl''s plugin completion protocol (used by `kubectl_complete-oulogin`)'
            cand __man 'Print the man page (roff) on stdout'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'kubectl-oulogin;help;exec'= {
        }
        &'kubectl-oulogin;help;token'= {
        }
        &'kubectl-oulogin;help;status'= {
        }
        &'kubectl-oulogin;help;logout'= {
        }
        &'kubectl-oulogin;help;completion'= {
        }
        &'kubectl-oulogin;help;version'= {
        }
        &'kubectl-oulogin;help;__complete'= {
        }
        &'kubectl-oulogin;help;__man'= {
        }
        &'kubectl-oulogin;help;help'= {
        }
    ]
    $completions[$command]
}
