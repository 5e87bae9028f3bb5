<#
    Register-IpcMessageEvent: engine events per message (Wait-Event/Get-Event, -Action, -Envelope, -MessageData,
    -Forward from a job), the channel's other consumers refused, and the traps: an action does not run while the
    pipeline thread is blocked in a .NET call, Unregister-Event leaves the rest in the channel, a burst of 100k
    messages is held in the channel (the sender waits) instead of in memory, and closing the channel ends it.
    Also the channel's own Closed event, used with Register-ObjectEvent.
#>

BeforeAll {
    . $PSScriptRoot/common.ps1
    . $PSScriptRoot/TestHelpers.ps1

    # Blocks the calling thread in .NET (no PowerShell runs on it) until the subscription has raised `count`
    # events, then says how many items the list holds at that moment. PowerShell code would give the engine a
    # chance to run pending actions; this does not.
    if (-not ('PsIpcTests.BlockedWait' -as [type])) {
        Add-Type -TypeDefinition @'
namespace PsIpcTests
{
    public static class BlockedWait
    {
        public static int CountWhenRaised(object subscription, long count, System.Collections.ICollection list, int timeoutMs)
        {
            var raised = subscription.GetType().GetProperty("Raised");
            var sw = System.Diagnostics.Stopwatch.StartNew();
            while ((long)raised.GetValue(subscription) < count)
            {
                if (sw.ElapsedMilliseconds > timeoutMs) return -1;
                System.Threading.Thread.Sleep(1);
            }
            return list.Count;
        }
    }
}
'@
    }

    function New-PipePair {
        $server = New-IpcPipe -Name (New-TestPipeName)
        $client = New-IpcPipe -Name $server.Name -Connect -TimeoutSeconds 30
        @{ Server = $server; Client = $client }
    }

    function Wait-EventCount {
        # Lets the engine run actions (Wait-Event does) until the condition holds; false after the timeout.
        param([scriptblock] $Condition, [double] $TimeoutSeconds = 60)
        $sw = [System.Diagnostics.Stopwatch]::StartNew()
        while (-not (& $Condition)) {
            if ($sw.Elapsed.TotalSeconds -gt $TimeoutSeconds) { return $false }
            $null = Wait-Event -SourceIdentifier 'psipc-test-nothing' -Timeout 1
        }
        $true
    }
}

Describe 'Register-IpcMessageEvent' {
    AfterEach {
        Get-EventSubscriber -Force | Unregister-Event -Force -ErrorAction SilentlyContinue
        Get-Event | Remove-Event -ErrorAction SilentlyContinue
        Get-Job | Remove-Job -Force -ErrorAction SilentlyContinue
        Clear-TestState
    }

    Context 'Register-IpcMessageEvent without -Action (Wait-Event, Get-Event)' {
        It 'raises one event per message, in order, with the decoded message as MessageData' {
            $p = New-PipePair
            Register-IpcMessageEvent $p.Server -SourceIdentifier msgs -MessageData 'mine'
            'a', @{ N = 2 }, ([byte[]](1, 2)) | Send-IpcMessage $p.Client

            $first = Wait-Event -SourceIdentifier msgs -Timeout 30
            $first.MessageData | Should -BeExactly 'a'
            $first.Sender | Should -Be $p.Server
            $first.SourceEventArgs.Envelope.Format | Should -Be 'Text'
            $first.SourceEventArgs.MessageData | Should -Be 'mine'
            $first | Remove-Event
            $second = Wait-Event -SourceIdentifier msgs -Timeout 30
            $second.MessageData.N | Should -Be 2
            $second | Remove-Event
            $third = Wait-Event -SourceIdentifier msgs -Timeout 30
            , $third.MessageData | Should -BeOfType [byte[]]
            $third.MessageData | Should -Be @(1, 2)
        }

        It 'gives the envelope as MessageData with -Envelope (sender, channel, format, size)' {
            $p = New-PipePair
            Register-IpcMessageEvent $p.Server -SourceIdentifier env -Envelope
            Send-IpcMessage $p.Client 'hello'

            $e = Wait-Event -SourceIdentifier env -Timeout 30
            $e.MessageData | Should -BeOfType [PsIpc.IpcEnvelope]
            $e.MessageData.Body | Should -BeExactly 'hello'
            $e.MessageData.Channel | Should -Be $p.Server
            $e.MessageData.SenderProcessId | Should -Be $PID
            $e.MessageData.Size | Should -Be 5
            # A reply goes to the sender, as with Receive-IpcMessage -Envelope.
            Send-IpcMessage $e.MessageData.Sender 'back'
            Receive-IpcMessage $p.Client -Count 1 -TimeoutSeconds 30 | Should -BeExactly 'back'
        }

        It 'raises a DecodeFailed error event for a message that cannot be decoded, and goes on' {
            $p = New-PipePair
            Register-IpcMessageEvent $p.Server -SourceIdentifier bad
            $p.Client.Send([PsIpc.Transport.Framing.MessageFormat]::Json, [System.Text.Encoding]::UTF8.GetBytes('{not json'),
                [PsIpc.Transport.Deadline]::Infinite, [System.Threading.CancellationToken]::None)
            Send-IpcMessage $p.Client 'next'

            $e = Wait-Event -SourceIdentifier bad -Timeout 30
            $e.MessageData | Should -BeOfType [System.Management.Automation.ErrorRecord]
            $e.MessageData.FullyQualifiedErrorId | Should -Be 'DecodeFailed'
            $e.SourceEventArgs.Error | Should -Not -BeNullOrEmpty
            $e | Remove-Event
            (Wait-Event -SourceIdentifier bad -Timeout 30).MessageData | Should -BeExactly 'next'
        }

        It 'decodes JSON on its own thread' {
            $p = New-PipePair
            Register-IpcMessageEvent $p.Server -SourceIdentifier json
            Send-IpcMessage $p.Client ([pscustomobject]@{ Name = 'x'; N = 7 }) -Format Json

            $e = Wait-Event -SourceIdentifier json -Timeout 60
            $e.MessageData.N | Should -Be 7
            $e.MessageData.Name | Should -BeExactly 'x'
        }

        It 'works on a shared memory queue and a TCP server too' {
            $queue = New-SharedMemory -Name (New-TestShmName) -Size 64KB -Queue
            try {
                Register-IpcMessageEvent $queue -SourceIdentifier shmq
                Send-IpcMessage $queue 'in the ring'
                (Wait-Event -SourceIdentifier shmq -Timeout 30).MessageData | Should -BeExactly 'in the ring'
            }
            finally { Close-IpcChannel $queue; Remove-SharedMemory -Name $queue.Name }

            $server = Start-IpcSocketServer
            $client = Connect-IpcSocket -Port $server.Port -TimeoutSeconds 30
            Register-IpcMessageEvent $server -SourceIdentifier tcp
            Send-IpcMessage $client 'over tcp'
            (Wait-Event -SourceIdentifier tcp -Timeout 30).MessageData | Should -BeExactly 'over tcp'
            Stop-IpcSocketServer $server
        }
    }

    Context 'Register-IpcMessageEvent -Action' {
        It 'runs the action for each message, in order, and returns its job' {
            $p = New-PipePair
            $seen = [System.Collections.Generic.List[object]]::new()
            $job = Register-IpcMessageEvent $p.Server -SourceIdentifier act -MessageData $seen -Action {
                $EventArgs.MessageData.Add($Event.MessageData)
                "handled $($Event.MessageData)"
            }
            $job | Should -BeOfType [System.Management.Automation.PSEventJob]
            1..50 | Send-IpcMessage $p.Client

            Wait-EventCount { $seen.Count -ge 50 } | Should -BeTrue
            $seen | Should -Be (1..50)
            (Get-EventSubscriber -SourceIdentifier act).SourceObject.Pending | Should -Be 0
            ($job | Receive-Job)[0] | Should -BeExactly 'handled 1'
        }

        It 'keeps going after an action that throws: the error is kept in the job' {
            $p = New-PipePair
            $seen = [System.Collections.Generic.List[object]]::new()
            $job = Register-IpcMessageEvent $p.Server -SourceIdentifier thrower -MessageData $seen -Action {
                if ($Event.MessageData -eq 'bad') { throw 'this message is bad' }
                $EventArgs.MessageData.Add($Event.MessageData)
            }
            'bad', 'good1', 'good2' | Send-IpcMessage $p.Client

            Wait-EventCount { $seen.Count -ge 2 } | Should -BeTrue
            $seen | Should -Be 'good1', 'good2'
            $job.State | Should -Not -Be 'Failed'
            $subscription = (Get-EventSubscriber -SourceIdentifier thrower).SourceObject
            $subscription.ActionErrors | Should -Be 1
            $subscription.RecentActionErrors[0].Exception.Message | Should -Match 'this message is bad'
        }

        It 'does not run while the pipeline thread is blocked in a .NET call; Wait-Event lets it run' {
            $p = New-PipePair
            $seen = [System.Collections.Generic.List[object]]::new()
            $null = Register-IpcMessageEvent $p.Server -SourceIdentifier blocked -MessageData $seen -Action { $EventArgs.MessageData.Add($Event.MessageData) }
            $subscription = (Get-EventSubscriber -SourceIdentifier blocked).SourceObject
            Send-IpcMessage $p.Client 'while blocked'

            # One .NET call: it returns when the event was raised, and reports what the action had done by then.
            $countWhenRaised = [PsIpcTests.BlockedWait]::CountWhenRaised($subscription, 1, $seen, 60000)
            $countWhenRaised | Should -Be 0 -Because 'the event was raised (not -1: timed out) but its action cannot run while this thread is in .NET'

            Wait-EventCount { $seen.Count -ge 1 } | Should -BeTrue
            $seen | Should -Be 'while blocked'
        }

        It 'refuses -Action with -Forward (parameter sets)' {
            $p = New-PipePair
            { Register-IpcMessageEvent $p.Server -Action { } -Forward } | Should -Throw -ErrorId 'AmbiguousParameterSet,PsIpc.Commands.RegisterIpcMessageEventCommand'
        }
    }

    Context 'One consumer per channel' {
        It 'refuses Receive-IpcMessage, a second subscription and a source identifier in use, each with its id' {
            $p = New-PipePair
            Register-IpcMessageEvent $p.Server -SourceIdentifier one
            { Receive-IpcMessage $p.Server -TimeoutSeconds 0 } | Should -Throw -ErrorId 'ChannelHasSubscription,PsIpc.Commands.ReceiveIpcMessageCommand'
            { Register-IpcMessageEvent $p.Server -SourceIdentifier two } | Should -Throw -ErrorId 'ChannelHasSubscription,PsIpc.Commands.RegisterIpcMessageEventCommand'
            $other = New-PipePair
            { Register-IpcMessageEvent $other.Server -SourceIdentifier one } | Should -Throw -ErrorId 'SourceIdentifierInUse,PsIpc.Commands.RegisterIpcMessageEventCommand'
        }

        It 'refuses a server with a -ScriptBlock handler and a server''s view of one peer' {
            $server = New-IpcPipe -Name (New-TestPipeName) -ScriptBlock { $args[0] }
            { Register-IpcMessageEvent $server } | Should -Throw -ErrorId 'ChannelHasHandler,PsIpc.Commands.RegisterIpcMessageEventCommand'

            $p = New-PipePair
            Send-IpcMessage $p.Client 'who'
            $peer = (Receive-IpcMessage $p.Server -Count 1 -Envelope -TimeoutSeconds 30).Sender
            { Register-IpcMessageEvent $peer } | Should -Throw -ErrorId 'OperationNotSupported,PsIpc.Commands.RegisterIpcMessageEventCommand'
        }
    }

    Context 'Unregister-Event' {
        It 'stops delivery and leaves the messages not yet raised in the channel, for Receive-IpcMessage' {
            $p = New-PipePair
            Register-IpcMessageEvent $p.Server -SourceIdentifier partial
            $subscription = (Get-EventSubscriber -SourceIdentifier partial).SourceObject
            1..40 | Send-IpcMessage $p.Client
            # Nobody removes the events: the subscription stops at its window of pending events.
            Wait-Until { $subscription.Pending -ge [PsIpc.Events.IpcMessageSubscription]::Window } -TimeoutSeconds 60 | Should -BeTrue
            $window = [PsIpc.Events.IpcMessageSubscription]::Window

            Unregister-Event -SourceIdentifier partial
            $subscription.State | Should -Be 'Ended'
            $queued = @(Get-Event -SourceIdentifier partial | ForEach-Object MessageData)
            $queued | Should -Be (1..$window)
            $rest = Receive-IpcMessage $p.Server -Count (40 - $window) -TimeoutSeconds 30
            $rest | Should -Be (($window + 1)..40)
        }

        It 'with an action: Stop-Job of the action''s job ends it the same way' {
            $p = New-PipePair
            $job = Register-IpcMessageEvent $p.Server -SourceIdentifier stopped -Action { }
            $job | Stop-Job
            Get-EventSubscriber -SourceIdentifier stopped -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
            Send-IpcMessage $p.Client 'after stop'
            Receive-IpcMessage $p.Server -Count 1 -TimeoutSeconds 30 | Should -BeExactly 'after stop'
        }
    }

    Context 'A burst of 100k messages' {
        It 'is held in the channel and holds up the sender, not queued as events in memory' {
            $server = New-IpcPipe -Name (New-TestPipeName)
            Register-IpcMessageEvent $server -SourceIdentifier burst
            $subscription = (Get-EventSubscriber -SourceIdentifier burst).SourceObject
            [GC]::Collect(); [GC]::WaitForPendingFinalizers()
            $before = [GC]::GetTotalMemory($true)

            # A separate process sends 100k messages of 1 KiB (100 MiB in all); when a send has waited 2 s for room
            # it says 'blocked' once and goes on without a timeout.
            $sender = Start-TestPwshChild {
                param($Name)
                $c = New-IpcPipe -Name $Name -Connect -TimeoutSeconds 30
                $payload = 'x' * 1024
                $said = $false
                for ($i = 1; $i -le 100000; $i++) {
                    try { Send-IpcMessage $c "$i $payload" -TimeoutSeconds 2 -ErrorAction Stop }
                    catch {
                        if (-not $said) { 'blocked'; [Console]::Out.Flush(); $said = $true }
                        # SendTimeout: not queued, send it again. FlushTimeout: queued, only not yet written.
                        if ($_.FullyQualifiedErrorId -like 'SendTimeout,*') { Send-IpcMessage $c "$i $payload" }
                        elseif ($_.FullyQualifiedErrorId -notlike 'FlushTimeout,*') { throw }
                    }
                }
                Close-IpcChannel $c -TimeoutSeconds 300
                'sent'
            } -ArgumentList $server.Name
            Read-PeerLine $sender -TimeoutSeconds 300 | Should -Be 'blocked'

            # The sender waits for room: the events waiting here are at most the window, the rest is in the channel.
            $subscription.Pending | Should -BeLessOrEqual ([PsIpc.Events.IpcMessageSubscription]::Window)
            @(Get-Event -SourceIdentifier burst -ErrorAction Ignore).Count | Should -BeLessOrEqual ([PsIpc.Events.IpcMessageSubscription]::Window)
            $server.MessagesReceived | Should -BeLessThan 100000
            ([GC]::GetTotalMemory($true) - $before) / 1MB | Should -BeLessThan 64 -Because '100k messages of 1 KiB are 100 MiB'

            # Take some as events, then the rest with Receive-IpcMessage: every message once, in order.
            $numbers = [System.Collections.Generic.List[int]]::new()
            for ($i = 0; $i -lt 200; $i++) {
                $e = Wait-Event -SourceIdentifier burst -Timeout 60
                $numbers.Add([int]$e.MessageData.Split(' ')[0])
                $e | Remove-Event
                @(Get-Event -SourceIdentifier burst -ErrorAction Ignore).Count | Should -BeLessOrEqual ([PsIpc.Events.IpcMessageSubscription]::Window)
            }
            Unregister-Event -SourceIdentifier burst
            Get-Event -SourceIdentifier burst -ErrorAction Ignore | ForEach-Object { $numbers.Add([int]$_.MessageData.Split(' ')[0]); $_ | Remove-Event }
            Receive-IpcMessage $server -Count (100000 - $numbers.Count) -TimeoutSeconds 600 | ForEach-Object { $numbers.Add([int]$_.Split(' ')[0]) }
            $numbers.Count | Should -Be 100000
            for ($i = 0; $i -lt $numbers.Count; $i++) { if ($numbers[$i] -ne $i + 1) { $numbers[$i] | Should -Be ($i + 1) -Because "message $($i + 1) comes at position $i" } }
            $result = $sender | Wait-PwshChild -TimeoutSeconds 300
            $result.Output | Should -Contain 'sent'
        }
    }

    Context 'Closing the channel' {
        It 'ends a subscription without an action: no subscriber, no error' {
            $p = New-PipePair
            Register-IpcMessageEvent $p.Server -SourceIdentifier closing
            $subscription = (Get-EventSubscriber -SourceIdentifier closing).SourceObject
            Send-IpcMessage $p.Client 'before close'
            (Wait-Event -SourceIdentifier closing -Timeout 30).MessageData | Should -BeExactly 'before close'

            Close-IpcChannel $p.Server
            Wait-Until { $subscription.State -eq 'Ended' } -TimeoutSeconds 30 | Should -BeTrue
            Get-EventSubscriber -SourceIdentifier closing -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
            $subscription.EndReason | Should -Match 'closed'
            @(Get-Event -SourceIdentifier closing).Count | Should -Be 1 -Because 'events raised before the close stay in the queue'
        }

        It 'ends a subscription with an action after its last action ran; the job is Stopped' {
            $p = New-PipePair
            $seen = [System.Collections.Generic.List[object]]::new()
            $job = Register-IpcMessageEvent $p.Server -SourceIdentifier closingact -MessageData $seen -Action { $EventArgs.MessageData.Add($Event.MessageData) }
            1..5 | Send-IpcMessage $p.Client
            Wait-EventCount { $seen.Count -ge 5 } | Should -BeTrue

            Close-IpcChannel $p.Client, $p.Server
            Wait-EventCount { $job.State -eq 'Stopped' } | Should -BeTrue
            Get-EventSubscriber -SourceIdentifier closingact -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
        }

        It 'ends a client''s subscription when its server goes away (the end of its stream)' {
            $p = New-PipePair
            Register-IpcMessageEvent $p.Client -SourceIdentifier clientend
            $subscription = (Get-EventSubscriber -SourceIdentifier clientend).SourceObject
            Close-IpcChannel $p.Server
            Wait-Until { $subscription.State -eq 'Ended' } -TimeoutSeconds 60 | Should -BeTrue
            Get-EventSubscriber -SourceIdentifier clientend -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
        }
    }

    Context 'Register-IpcMessageEvent -Forward' {
        It 'forwards the events of a channel in a Start-Job to the session that started it' {
            $name = New-TestPipeName
            $job = Start-Job {
                param($Module, $Name)
                Import-Module $Module
                $server = New-IpcPipe -Name $Name
                Register-IpcMessageEvent $server -SourceIdentifier forwarded -Forward
                $null = Wait-Event -SourceIdentifier 'never' -Timeout 300
            } -ArgumentList $env:PSIPC_MODULE_PATH, $name
            try {
                $client = New-IpcPipe -Name $name -Connect -TimeoutSeconds 120
                Send-IpcMessage $client 'from the parent'
                $e = Wait-Event -SourceIdentifier forwarded -Timeout 120
                $e.MessageData | Should -BeExactly 'from the parent'
            }
            finally { $job | Stop-Job; $job | Remove-Job -Force }
        }
    }

    Context 'Tab completion' {
        It 'completes the names of open channels for -Channel, named or by position' {
            $prefix = New-TestPipeName -Prefix 'evc'
            $one = New-IpcPipe -Name "$prefix-one"
            $two = New-IpcPipe -Name "$prefix-two"
            foreach ($line in "Register-IpcMessageEvent -Channel $prefix", "Register-IpcMessageEvent $prefix") {
                $result = TabExpansion2 -inputScript $line -cursorColumn $line.Length
                $result.CompletionMatches.CompletionText | Sort-Object | Should -Be @("$prefix-one", "$prefix-two")
            }
        }
    }

    Context 'The Closed event of a channel (Register-ObjectEvent)' {
        It 'is raised by the channel object once, after Close-IpcChannel' {
            $p = New-PipePair
            Register-ObjectEvent -InputObject $p.Client -EventName Closed -SourceIdentifier clientclosed
            Close-IpcChannel $p.Client
            $e = Wait-Event -SourceIdentifier clientclosed -Timeout 30
            $e.Sender | Should -Be $p.Client
            $e.Sender.State | Should -Be 'Closed'
            Close-IpcChannel $p.Client
            @(Get-Event -SourceIdentifier clientclosed).Count | Should -Be 1 -Because 'a second Close raises nothing'
        }
    }
}
