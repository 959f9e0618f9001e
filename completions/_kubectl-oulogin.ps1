
using namespace System.Management.Automation
using namespace System.Management.Automation.Language

Register-ArgumentCompleter -Native -CommandName 'kubectl-oulogin' -ScriptBlock {
    param($wordToComplete, $commandAst, $cursorPosition)

    $commandElements = $commandAst.CommandElements
    $command = @(
        'kubectl-oulogin'
        for ($i = 1; $i -lt $commandElements.Count; $i++) {
            $element = $commandElements[$i]
            if ($element -isnot [StringConstantExpressionAst] -or
                $element.StringConstantType -ne [StringConstantType]::BareWord -or
                $element.Value.StartsWith('-') -or
                $element.Value -eq $wordToComplete) {
                break
        }
        $element.Value
    }) -join ';'

    $completions = @(switch ($command) {
        'kubectl-oulogin' {
            [CompletionResult]::new('--kubeconfig', '--kubeconfig', [CompletionResultType]::ParameterName, 'Use this kubeconfig file instead of the KUBECONFIG rules')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'The context to act on: to log in (again) for, to log out of, to show. With `--host`, the name of the new context')
            [CompletionResult]::new('--host', '--host', [CompletionResultType]::ParameterName, 'OpenUnison host, `HOST[:PORT]`; `https://` is implied')
            [CompletionResult]::new('--certificate-authority', '--certificate-authority', [CompletionResultType]::ParameterName, 'Extra CA certificate (PEM) to trust for the OpenUnison host, on top of the system roots')
            [CompletionResult]::new('--certificate-authority-data', '--certificate-authority-data', [CompletionResultType]::ParameterName, 'The same as `--certificate-authority`, as base64 PEM (as in a kubeconfig); both may be given')
            [CompletionResult]::new('--browser-command', '--browser-command', [CompletionResultType]::ParameterName, 'Open the login URL with this command (split like a shell would; the URL is appended)')
            [CompletionResult]::new('--port', '--port', [CompletionResultType]::ParameterName, 'Loopback port for the browser redirect (OpenUnison registers 8400; default: the port the session was created with, else 8400)')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'How long to wait for the browser login')
            [CompletionResult]::new('--shell', '--shell', [CompletionResultType]::ParameterName, 'The shell whose syntax `--isolated` prints: `sh` (also `bash`, `zsh`), `fish`, `powershell` (also `pwsh`) or `cmd` [default: powershell on Windows, else sh]')
            [CompletionResult]::new('--no-browser', '--no-browser', [CompletionResultType]::ParameterName, 'Do not open a browser: print the URL, and accept the final redirect URL pasted on stdin')
            [CompletionResult]::new('--force', '--force', [CompletionResultType]::ParameterName, 'Log in even if the existing session still works')
            [CompletionResult]::new('--auth-provider', '--auth-provider', [CompletionResultType]::ParameterName, 'Write the legacy in-tree `auth-provider: oidc` user instead of an exec stanza (race-prone)')
            [CompletionResult]::new('--isolated', '--isolated', [CompletionResultType]::ParameterName, 'Log in to a fresh private kubeconfig with its own OpenUnison session, and print the line that sets KUBECONFIG to it on stdout (`export KUBECONFIG=<path>` for `eval`; see `--shell`)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Debug output on stderr; repeat for more (`OULOGIN_DEBUG=1` or `2` does the same)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Debug output on stderr; repeat for more (`OULOGIN_DEBUG=1` or `2` does the same)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('exec', 'exec', [CompletionResultType]::ParameterValue, 'Run a command with its own fresh kubeconfig and OpenUnison session, removed again when the command exits')
            [CompletionResult]::new('token', 'token', [CompletionResultType]::ParameterValue, 'The exec credential plugin that kubeconfigs written by this tool call')
            [CompletionResult]::new('status', 'status', [CompletionResultType]::ParameterValue, 'Show the contexts this tool manages and the state of their sessions')
            [CompletionResult]::new('logout', 'logout', [CompletionResultType]::ParameterValue, 'Remove the local session and the credentials of a context')
            [CompletionResult]::new('completion', 'completion', [CompletionResultType]::ParameterValue, 'Print a shell completion script')
            [CompletionResult]::new('version', 'version', [CompletionResultType]::ParameterValue, 'Print the version, as `--version` does')
            [CompletionResult]::new('__complete', '__complete', [CompletionResultType]::ParameterValue, 'Answer kubectl''s plugin completion protocol (used by `kubectl_complete-oulogin`)')
            [CompletionResult]::new('__man', '__man', [CompletionResultType]::ParameterValue, 'Print the man page (roff) on stdout')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'kubectl-oulogin;exec' {
            [CompletionResult]::new('--host', '--host', [CompletionResultType]::ParameterName, 'OpenUnison host, `HOST[:PORT]`; `https://` is implied')
            [CompletionResult]::new('--certificate-authority', '--certificate-authority', [CompletionResultType]::ParameterName, 'Extra CA certificate (PEM) to trust for the OpenUnison host, on top of the system roots')
            [CompletionResult]::new('--certificate-authority-data', '--certificate-authority-data', [CompletionResultType]::ParameterName, 'The same as `--certificate-authority`, as base64 PEM (as in a kubeconfig); both may be given')
            [CompletionResult]::new('--browser-command', '--browser-command', [CompletionResultType]::ParameterName, 'Open the login URL with this command (split like a shell would; the URL is appended)')
            [CompletionResult]::new('--port', '--port', [CompletionResultType]::ParameterName, 'Loopback port for the browser redirect (OpenUnison registers 8400; default: the port the session was created with, else 8400)')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'How long to wait for the browser login')
            [CompletionResult]::new('--kubeconfig', '--kubeconfig', [CompletionResultType]::ParameterName, 'Use this kubeconfig file instead of the KUBECONFIG rules')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'The context to act on: to log in (again) for, to log out of, to show. With `--host`, the name of the new context')
            [CompletionResult]::new('--no-browser', '--no-browser', [CompletionResultType]::ParameterName, 'Do not open a browser: print the URL, and accept the final redirect URL pasted on stdin')
            [CompletionResult]::new('--force', '--force', [CompletionResultType]::ParameterName, 'Log in even if the existing session still works')
            [CompletionResult]::new('--auth-provider', '--auth-provider', [CompletionResultType]::ParameterName, 'Write the legacy in-tree `auth-provider: oidc` user instead of an exec stanza (race-prone)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Debug output on stderr; repeat for more (`OULOGIN_DEBUG=1` or `2` does the same)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Debug output on stderr; repeat for more (`OULOGIN_DEBUG=1` or `2` does the same)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'kubectl-oulogin;token' {
            [CompletionResult]::new('--session', '--session', [CompletionResultType]::ParameterName, 'Name of a session under `$KUBECACHEDIR/oulogin/`')
            [CompletionResult]::new('--session-file', '--session-file', [CompletionResultType]::ParameterName, 'Path of a session file (isolated kubeconfigs keep theirs beside them)')
            [CompletionResult]::new('--host', '--host', [CompletionResultType]::ParameterName, 'OpenUnison host of the session, used in messages when the session is missing')
            [CompletionResult]::new('--kubeconfig', '--kubeconfig', [CompletionResultType]::ParameterName, 'Use this kubeconfig file instead of the KUBECONFIG rules')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'The context to act on: to log in (again) for, to log out of, to show. With `--host`, the name of the new context')
            [CompletionResult]::new('--logged-out', '--logged-out', [CompletionResultType]::ParameterName, 'Written by `logout`: fail at once, naming the command that logs in again')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Debug output on stderr; repeat for more (`OULOGIN_DEBUG=1` or `2` does the same)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Debug output on stderr; repeat for more (`OULOGIN_DEBUG=1` or `2` does the same)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'kubectl-oulogin;status' {
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format: `wide` adds the session file, the server session''s inactivity timeout and the groups; `name` prints context names only')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format: `wide` adds the session file, the server session''s inactivity timeout and the groups; `name` prints context names only')
            [CompletionResult]::new('--kubeconfig', '--kubeconfig', [CompletionResultType]::ParameterName, 'Use this kubeconfig file instead of the KUBECONFIG rules')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'The context to act on: to log in (again) for, to log out of, to show. With `--host`, the name of the new context')
            [CompletionResult]::new('--check', '--check', [CompletionResultType]::ParameterName, 'Ask OpenUnison whether each session is still alive (costs one refresh per session); exit 1 when one is not')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Debug output on stderr; repeat for more (`OULOGIN_DEBUG=1` or `2` does the same)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Debug output on stderr; repeat for more (`OULOGIN_DEBUG=1` or `2` does the same)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'kubectl-oulogin;logout' {
            [CompletionResult]::new('--kubeconfig', '--kubeconfig', [CompletionResultType]::ParameterName, 'Use this kubeconfig file instead of the KUBECONFIG rules')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'The context to act on: to log in (again) for, to log out of, to show. With `--host`, the name of the new context')
            [CompletionResult]::new('--all', '--all', [CompletionResultType]::ParameterName, 'Log out of every context this tool manages (instead of `--context NAME`, default: the current one)')
            [CompletionResult]::new('--purge', '--purge', [CompletionResultType]::ParameterName, 'Also remove the context and cluster entries, not only the credentials')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Debug output on stderr; repeat for more (`OULOGIN_DEBUG=1` or `2` does the same)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Debug output on stderr; repeat for more (`OULOGIN_DEBUG=1` or `2` does the same)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'kubectl-oulogin;completion' {
            [CompletionResult]::new('--kubeconfig', '--kubeconfig', [CompletionResultType]::ParameterName, 'Use this kubeconfig file instead of the KUBECONFIG rules')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'The context to act on: to log in (again) for, to log out of, to show. With `--host`, the name of the new context')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Debug output on stderr; repeat for more (`OULOGIN_DEBUG=1` or `2` does the same)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Debug output on stderr; repeat for more (`OULOGIN_DEBUG=1` or `2` does the same)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'kubectl-oulogin;version' {
            [CompletionResult]::new('--kubeconfig', '--kubeconfig', [CompletionResultType]::ParameterName, 'Use this kubeconfig file instead of the KUBECONFIG rules')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'The context to act on: to log in (again) for, to log out of, to show. With `--host`, the name of the new context')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Debug output on stderr; repeat for more (`OULOGIN_DEBUG=1` or `2` does the same)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Debug output on stderr; repeat for more (`OULOGIN_DEBUG=1` or `2` does the same)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'kubectl-oulogin;__complete' {
            [CompletionResult]::new('--kubeconfig', '--kubeconfig', [CompletionResultType]::ParameterName, 'Use this kubeconfig file instead of the KUBECONFIG rules')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'The context to act on: to log in (again) for, to log out of, to show. With `--host`, the name of the new context')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Debug output on stderr; repeat for more (`OULOGIN_DEBUG=1` or `2` does the same)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Debug output on stderr; repeat for more (`OULOGIN_DEBUG=1` or `2` does the same)')
            break
        }
        'kubectl-oulogin;__man' {
            [CompletionResult]::new('--kubeconfig', '--kubeconfig', [CompletionResultType]::ParameterName, 'Use this kubeconfig file instead of the KUBECONFIG rules')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'The context to act on: to log in (again) for, to log out of, to show. With `--host`, the name of the new context')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Debug output on stderr; repeat for more (`OULOGIN_DEBUG=1` or `2` does the same)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Debug output on stderr; repeat for more (`OULOGIN_DEBUG=1` or `2` does the same)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'kubectl-oulogin;help' {
            [CompletionResult]::new('exec', 'exec', [CompletionResultType]::ParameterValue, 'Run a command with its own fresh kubeconfig and OpenUnison session, removed again when the command exits')
            [CompletionResult]::new('token', 'token', [CompletionResultType]::ParameterValue, 'The exec credential plugin that kubeconfigs written by this tool call')
            [CompletionResult]::new('status', 'status', [CompletionResultType]::ParameterValue, 'Show the contexts this tool manages and the state of their sessions')
            [CompletionResult]::new('logout', 'logout', [CompletionResultType]::ParameterValue, 'Remove the local session and the credentials of a context')
            [CompletionResult]::new('completion', 'completion', [CompletionResultType]::ParameterValue, 'Print a shell completion script')
            [CompletionResult]::new('version', 'version', [CompletionResultType]::ParameterValue, 'Print the version, as `--version` does')
            [CompletionResult]::new('__complete', '__complete', [CompletionResultType]::ParameterValue, 'Answer kubectl''s plugin completion protocol (used by `kubectl_complete-oulogin`)')
            [CompletionResult]::new('__man', '__man', [CompletionResultType]::ParameterValue, 'Print the man page (roff) on stdout')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'kubectl-oulogin;help;exec' {
            break
        }
        'kubectl-oulogin;help;token' {
            break
        }
        'kubectl-oulogin;help;status' {
            break
        }
        'kubectl-oulogin;help;logout' {
            break
        }
        'kubectl-oulogin;help;completion' {
            break
        }
        'kubectl-oulogin;help;version' {
            break
        }
        'kubectl-oulogin;help;__complete' {
            break
        }
        'kubectl-oulogin;help;__man' {
            break
        }
        'kubectl-oulogin;help;help' {
            break
        }
    })

    $completions.Where{ $_.CompletionText -like "$wordToComplete*" } |
        Sort-Object -Property ListItemText
}
