BeforeAll {
    . $PSScriptRoot/common.ps1
    . $PSScriptRoot/TestHelpers.ps1
}

AfterAll {
    Clear-TestState
}

Describe 'Invoke-IpcRequest' {
    AfterEach {
        Clear-TestState
    }

    Context 'against script-block servers' {
        It 'asks a pipe script-block server: one call per request, pipeline input in order' {
            $srv = New-IpcPipe -ScriptBlock { param($request) "re: $request" }
            $c = New-IpcPipe -Name $srv.Name -Connect -TimeoutSeconds 10
            $c.SupportsCorrelation | Should -BeTrue
            Invoke-IpcRequest $c 'one' -TimeoutSeconds 10 | Should -Be 're: one'
            1..20 | ForEach-Object { "m$_" } | Invoke-IpcRequest $c -TimeoutSeconds 10 |
                Should -Be @(1..20 | ForEach-Object { "re: m$_" })
            $srv.Handler.MessagesHandled | Should -Be 21
            $c.LateRepliesDropped | Should -Be 0
        }

        It 'asks a TCP script-block server: objects come back whole, several outputs as one reply written one by one' {
            $srv = Start-IpcSocketServer -Port 0 -ScriptBlock { param($request) $request.A; $request.B; [pscustomobject]@{ Sum = $request.A + $request.B } }
            $c = Connect-IpcSocket -Port $srv.Port -TimeoutSeconds 10
            $reply = @(Invoke-IpcRequest $c @{ A = 2; B = 3 } -Format Json -TimeoutSeconds 10)
            $reply.Count | Should -Be 3
            $reply[0] | Should -Be 2
            $reply[1] | Should -Be 3
            $reply[2].Sum | Should -Be 5
            $envelope = Invoke-IpcRequest $c 'x' -Envelope -TimeoutSeconds 10
            $envelope | Should -BeOfType ([PsIpc.IpcEnvelope])
            $envelope.Sender | Should -Be $c
        }

        It 'a handler without output answers $null, and a Receive-IpcMessage loop on the same channel never sees replies' {
            $srv = New-IpcPipe -ScriptBlock { param($request) if ($request -eq 'push') { } else { $null } }
            $c = New-IpcPipe -Name $srv.Name -Connect -TimeoutSeconds 10
            Invoke-IpcRequest $c 'nothing' -TimeoutSeconds 10 | Should -BeNullOrEmpty
            Receive-IpcMessage $c -TimeoutSeconds 0.3 -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
        }

        It 'serves a pwsh child process server' {
            $name = New-TestPipeName
            $child = Start-TestPwshChild {
                param($Name)
                $srv = New-IpcPipe -Name $Name -ScriptBlock { param($request) "child ${PID}: $request" }
                [Console]::Out.WriteLine('ready')
                $null = [Console]::In.ReadLine()
                Close-IpcChannel $srv
            } -ArgumentList $name -KeepStandardInput
            Read-PeerLine $child -TimeoutSeconds 60 | Should -Be 'ready'
            $c = New-IpcPipe -Name $name -Connect -TimeoutSeconds 10
            'a', 'b' | Invoke-IpcRequest $c -TimeoutSeconds 10 | Should -Be @("child $($child.Id): a", "child $($child.Id): b")
            $child.StandardInput.Close()
            $child.WaitForExit(30000) | Should -BeTrue
        }

        It 'answers a Receive-IpcMessage/Send-IpcMessage loop written in PowerShell' {
            $srv = New-IpcPipe
            $c = New-IpcPipe -Name $srv.Name -Connect -TimeoutSeconds 10
            $ps = [powershell]::Create()
            $null = $ps.AddScript({
                    param($ModulePath, $Server)
                    Import-Module $ModulePath
                    Receive-IpcMessage $Server -Count 2 -Envelope -TimeoutSeconds 30 | ForEach-Object { Send-IpcMessage $_.Sender "echo $($_.Body)" }
                }).AddArgument($env:PSIPC_MODULE_PATH).AddArgument($srv)
            $running = $ps.BeginInvoke()
            try {
                'x', 'y' | Invoke-IpcRequest $c -TimeoutSeconds 30 | Should -Be @('echo x', 'echo y')
            }
            finally {
                $null = $ps.EndInvoke($running)
                $ps.Dispose()
            }
        }
    }

    Context 'handler parameters' {
        It 'takes $using: variables and -ArgumentList' {
            $prefix = 'P'
            $table = @{ k = 'v' }
            $srv = New-IpcPipe -ScriptBlock { param($request, $first, $second) "$using:prefix $($using:table.k) $request $first $second" } -ArgumentList 'a1', 2
            $c = New-IpcPipe -Name $srv.Name -Connect -TimeoutSeconds 10
            Invoke-IpcRequest $c 'r' -TimeoutSeconds 10 | Should -Be 'P v r a1 2'

            $tcp = Start-IpcSocketServer -Port 0 -ScriptBlock { param($request, $n) $request * $n + $using:prefix } -ArgumentList 3
            $t = Connect-IpcSocket -Port $tcp.Port -TimeoutSeconds 10
            Invoke-IpcRequest $t 'ab' -TimeoutSeconds 10 | Should -Be 'abababP'
        }

        It 'a handler in ConstrainedLanguage answers, in ConstrainedLanguage' {
            $iss = [System.Management.Automation.Runspaces.InitialSessionState]::CreateDefault2()
            $iss.LanguageMode = 'ConstrainedLanguage'
            $rs = [runspacefactory]::CreateRunspace($iss)
            $rs.Open()
            $ps = [powershell]::Create()
            $ps.Runspace = $rs
            try {
                $name = $ps.AddScript("Import-Module '$env:PSIPC_MODULE_PATH'; (New-IpcPipe -ScriptBlock { param(`$r) if (`$r -eq 'method') { [System.IO.File]::Exists('/') } else { `"`$r `$(`$ExecutionContext.SessionState.LanguageMode)`" } }).Name").Invoke()[0]
                $c = New-IpcPipe -Name $name -Connect -TimeoutSeconds 10
                Invoke-IpcRequest $c 'mode' -TimeoutSeconds 10 | Should -Be 'mode ConstrainedLanguage'
                Invoke-IpcRequest $c 'method' -TimeoutSeconds 10 -ErrorAction SilentlyContinue -ErrorVariable failed
                $failed[0].FullyQualifiedErrorId | Should -Be 'HandlerFailed,PsIpc.Commands.InvokeIpcRequestCommand'
                Close-IpcChannel $c
            }
            finally {
                $ps.Dispose()
                $rs.Dispose()
            }
        }
    }

    Context 'errors' {
        It 'a handler that throws gives that request HandlerFailed with its message; the next request is answered' {
            $srv = New-IpcPipe -ScriptBlock { param($n) if ($n -eq 0) { throw "no zero please" }; 10 / $n }
            $c = New-IpcPipe -Name $srv.Name -Connect -TimeoutSeconds 10
            $out = 5, 0, 2 | Invoke-IpcRequest $c -TimeoutSeconds 10 -ErrorAction SilentlyContinue -ErrorVariable failed
            $out | Should -Be @(2, 5)
            $failed.Count | Should -Be 1
            $failed[0].FullyQualifiedErrorId | Should -Be 'HandlerFailed,PsIpc.Commands.InvokeIpcRequestCommand'
            $failed[0].Exception.Message | Should -Match 'no zero please'
            $failed[0].CategoryInfo.Category | Should -Be 'InvalidResult'
            $srv.HandlerErrors | Should -Be 1
            $srv.RecentHandlerErrors[0].Message | Should -Be 'no zero please'
        }

        It 'Receive-IpcMessage gets HandlerFailed for a plain message the handler failed on (Write-Error too)' {
            $srv = Start-IpcSocketServer -Port 0 -ScriptBlock { param($m) Write-Error "bad $m"; "partial $m" }
            $c = Connect-IpcSocket -Port $srv.Port -TimeoutSeconds 10
            Send-IpcMessage $c 'x'
            $got = Receive-IpcMessage $c -Count 1 -TimeoutSeconds 10 -ErrorAction SilentlyContinue -ErrorVariable failed
            $got | Should -Be 'partial x'
            Wait-Until { $failed.Count -gt 0 -or @(Receive-IpcMessage $c -TimeoutSeconds 1 -ErrorAction SilentlyContinue -ErrorVariable +failed).Count -gt 0 } -TimeoutSeconds 10 | Should -BeTrue
            $failed[0].FullyQualifiedErrorId | Should -Be 'HandlerFailed,PsIpc.Commands.ReceiveIpcMessageCommand'
            $failed[0].Exception.Message | Should -Match 'bad x'
            $srv.HandlerErrors | Should -Be 1
        }

        It 'a Line client gets no reply for a failed message, and the connection stays open' {
            $srv = Start-IpcSocketServer -Port 0 -Framing Line -ScriptBlock { param($m) if ($m -eq 'bad') { throw 'nope' }; "ok $m" }
            $c = Connect-IpcSocket -Port $srv.Port -Framing Line -TimeoutSeconds 10
            $c.SupportsCorrelation | Should -BeFalse
            Invoke-IpcRequest $c 'bad' -TimeoutSeconds 0.5 -ErrorAction SilentlyContinue -ErrorVariable failed | Should -BeNullOrEmpty
            $failed[0].FullyQualifiedErrorId | Should -Be 'ReceiveTimeout,PsIpc.Commands.InvokeIpcRequestCommand'
            Invoke-IpcRequest $c 'good' -TimeoutSeconds 10 | Should -Be 'ok good'
            Wait-Until { $srv.HandlerErrors -eq 1 } | Should -BeTrue
        }

        It 'a shared memory queue refuses requests at either end before sending anything (its one ring would hand the request back)' {
            $name = New-TestShmName
            try {
                $queue = New-SharedMemory -Name $name -Size 4KB -Queue
                $other = New-SharedMemory -Name $name -Open
                'first', 'second' | Send-IpcMessage $queue
                foreach ($end in $other, $queue) {
                    $failed = { 'request 1', 'request 2' | Invoke-IpcRequest $end -TimeoutSeconds 5 } |
                        Should -Throw -ErrorId 'OperationNotSupported,PsIpc.Commands.InvokeIpcRequestCommand' -PassThru
                    $failed.CategoryInfo.Category | Should -Be 'InvalidOperation'
                    $failed.TargetObject | Should -Be $name
                    $failed.Exception.Message | Should -Match 'shared memory queue'
                    $failed.Exception.Message | Should -Match 'Nothing was sent'
                    $failed.Exception.Message | Should -Match 'two queues'
                    $end.CanRequest | Should -BeFalse
                }
                # Nothing was sent and nothing taken: the two messages are there, in order.
                $queue.Count | Should -Be 2
                $other.MessagesSent | Should -Be 0
                Receive-IpcMessage $other -Count 2 -TimeoutSeconds 5 | Should -Be @('first', 'second')
                $queue.Count | Should -Be 0
            }
            finally {
                Clear-TestState
                Remove-SharedMemory -Name $name -Confirm:$false -ErrorAction SilentlyContinue
            }
        }

        It 'times out with ReceiveTimeout and drops the late reply' {
            $srv = New-IpcPipe
            $c = New-IpcPipe -Name $srv.Name -Connect -TimeoutSeconds 10
            Invoke-IpcRequest $c 'first' -TimeoutSeconds 0.2 -ErrorAction SilentlyContinue -ErrorVariable failed | Should -BeNullOrEmpty
            $failed[0].FullyQualifiedErrorId | Should -Be 'ReceiveTimeout,PsIpc.Commands.InvokeIpcRequestCommand'
            $late = Receive-IpcMessage $srv -Count 1 -Envelope -TimeoutSeconds 10
            Send-IpcMessage $late.Sender 'late reply'
            Wait-Until { $c.LateRepliesDropped -eq 1 } | Should -BeTrue
            Receive-IpcMessage $c -TimeoutSeconds 0.2 -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
        }

        It 'stops at once when its runspace is stopped (Ctrl+C)' {
            $srv = New-IpcPipe
            $c = New-IpcPipe -Name $srv.Name -Connect -TimeoutSeconds 10
            $ps = [powershell]::Create()
            $null = $ps.AddScript({ param($ModulePath, $Channel) Import-Module $ModulePath; Invoke-IpcRequest $Channel 'wait forever' }).
            AddArgument($env:PSIPC_MODULE_PATH).AddArgument($c)
            $running = $ps.BeginInvoke()
            try {
                Receive-IpcMessage $srv -Count 1 -TimeoutSeconds 30 | Should -Be 'wait forever' # the request is out and waits
                $ps.Stop()
                $ps.InvocationStateInfo.State | Should -Be 'Stopped'
            }
            finally {
                $ps.Dispose()
            }
            $c.State | Should -Be 'Connected'
        }
    }
}
