# A transport defined outside PsIpc.Transport (tests/PsIpc.TestTransport, written only against the public
# IpcChannel contract) works with the cmdlets like any other channel: nothing in the module knows its type.
BeforeAll {
    . $PSScriptRoot/common.ps1
    . $PSScriptRoot/TestHelpers.ps1

    $version = (Import-PowerShellDataFile -LiteralPath (Join-Path $PsIpcModulePath 'PsIpc.psd1')).ModuleVersion
    $out = Join-Path ([System.IO.Path]::GetTempPath()) "psipc-testtransport-$version-$PID"
    $project = Join-Path $RepoRoot 'tests/PsIpc.TestTransport/PsIpc.TestTransport.csproj'
    # Built with the module's version, so its reference to PsIpc.Transport binds to the module's copy.
    $log = & dotnet build $project -c Release -nologo "-p:Version=$version" -o $out 2>&1
    if ($LASTEXITCODE -ne 0) { throw "Building the test transport failed:`n$($log -join "`n")" }
    Add-Type -LiteralPath (Join-Path $out 'PsIpc.TestTransport.dll')
    $script:TestTransportOut = $out
}

AfterAll {
    Clear-TestState
    Remove-Item -LiteralPath $script:TestTransportOut -Recurse -Force -ErrorAction SilentlyContinue
}

Describe 'A channel from another assembly' {
    BeforeEach {
        $name = 'contract-' + [guid]::NewGuid().ToString('N').Substring(0, 8)
        $pair = [PsIpc.TestTransport.LoopbackChannel]::CreatePair($name, $false)
        $server, $client = $pair[0], $pair[1]
    }

    AfterEach {
        $pair | ForEach-Object { $_.Dispose() }
    }

    It 'is the same PsIpc.Transport assembly the module uses' {
        $server | Should -BeOfType ([PsIpc.Transport.Channels.IpcChannel])
        $server.GetType().BaseType.Assembly.Location | Should -Be ([PsIpc.Transport.Channels.IpcChannel].Assembly.Location)
    }

    It 'sends with Send-IpcMessage and receives with Receive-IpcMessage, by object and by name' {
        'one', 'two' | Send-IpcMessage $client
        Send-IpcMessage -Channel $client -InputObject ([byte[]](1, 2, 3))

        $got = @(Receive-IpcMessage $server -Count 3 -TimeoutSeconds 30)

        $got[0] | Should -BeExactly 'one'
        $got[1] | Should -BeExactly 'two'
        , $got[2] | Should -BeOfType ([byte[]])
        $server.Acknowledged | Should -Be 3 -Because 'Receive-IpcMessage acknowledges what it wrote to the pipeline'

        Send-IpcMessage $client.Name 'by name'
        Receive-IpcMessage $server.Name -Count 1 -TimeoutSeconds 30 | Should -BeExactly 'by name'
    }

    It 'gives envelopes whose Sender and SenderProcessId come from the channel' {
        Send-IpcMessage $client 'hi'

        $envelope = Receive-IpcMessage $server -Count 1 -TimeoutSeconds 30 -Envelope

        $envelope.Body | Should -BeExactly 'hi'
        $envelope.Sender | Should -Be $client
        $envelope.SenderProcessId | Should -Be $PID
        $envelope.Channel | Should -Be $server
    }

    It 'leaves what -Count did not take for the next Receive-IpcMessage' {
        1..5 | ForEach-Object { "m$_" } | Send-IpcMessage $client

        Receive-IpcMessage $server -Count 2 -TimeoutSeconds 30 | Should -Be @('m1', 'm2')
        Receive-IpcMessage $server -Count 3 -TimeoutSeconds 30 | Should -Be @('m3', 'm4', 'm5')
    }

    It 'puts back what Select-Object -First did not take' {
        1..4 | ForEach-Object { "m$_" } | Send-IpcMessage $client

        Receive-IpcMessage $server -TimeoutSeconds 30 | Select-Object -First 1 | Should -Be 'm1'
        Receive-IpcMessage $server -Count 3 -TimeoutSeconds 30 | Should -Be @('m2', 'm3', 'm4')
    }

    It 'refuses CliXml from a channel that does not say its peer is authenticated, and rejects the message' {
        Send-IpcMessage $client ([pscustomobject]@{ A = 1 })

        $err = $null
        Receive-IpcMessage $server -Count 1 -TimeoutSeconds 30 -ErrorVariable err -ErrorAction SilentlyContinue

        $err[0].FullyQualifiedErrorId | Should -Be 'DecodeFailed,PsIpc.Commands.ReceiveIpcMessageCommand'
        $server.Rejected | Should -Be 1
    }

    It 'decodes CliXml from a channel whose peer is authenticated' {
        $known = [PsIpc.TestTransport.LoopbackChannel]::CreatePair("$name-known", $true)
        try {
            Send-IpcMessage $known[1] ([pscustomobject]@{ A = 1; B = 'x' })
            $got = Receive-IpcMessage $known[0] -Count 1 -TimeoutSeconds 30
            $got.A | Should -Be 1
            $got.B | Should -BeExactly 'x'
        }
        finally {
            $known | ForEach-Object { $_.Dispose() }
        }
    }

    It 'is listed by Get-IpcChannel, in the common table, and gone after Close-IpcChannel' {
        (Get-IpcChannel -Name $name) | Should -Be $server
        $text = Get-IpcChannel -Name $name | Out-String
        $text | Should -Match 'Name\s+Kind\s+Role\s+State'
        $text | Should -Match "$name\s+Other\s+Server"

        Close-IpcChannel $client

        @(Get-IpcChannel -Name $client.Name -ErrorAction SilentlyContinue) | Should -HaveCount 0
        $client.IsClosed | Should -BeTrue
        Receive-IpcMessage $server -TimeoutSeconds 30 | Should -BeNullOrEmpty -Because 'the other end closed: the stream ends'
    }

    It 'times out with ReceiveTimeout like any channel' {
        $err = $null
        Receive-IpcMessage $server -TimeoutSeconds 0 -ErrorVariable err -ErrorAction SilentlyContinue
        $err[0].FullyQualifiedErrorId | Should -Be 'ReceiveTimeout,PsIpc.Commands.ReceiveIpcMessageCommand'
    }

    It 'reports ChannelClosed for a send on a closed channel' {
        Close-IpcChannel $client
        { Send-IpcMessage $client 'late' -ErrorAction Stop } | Should -Throw -ErrorId 'ChannelClosed,PsIpc.Commands.SendIpcMessageCommand'
    }
}

Describe 'Capabilities the cmdlets check' {
    It 'refuses Receive-IpcMessage on a server''s view of one peer with OperationNotSupported' {
        $srv = New-IpcPipe -Name (New-TestPipeName)
        try {
            $c = New-IpcPipe -Name $srv.Name -Connect -TimeoutSeconds 10
            Send-IpcMessage $c 'hi'
            $peer = (Receive-IpcMessage $srv -Count 1 -TimeoutSeconds 30 -Envelope).Sender
            $peer.CanReceive | Should -BeFalse
            { Receive-IpcMessage $peer -TimeoutSeconds 0 -ErrorAction Stop } |
                Should -Throw -ErrorId 'OperationNotSupported,PsIpc.Commands.ReceiveIpcMessageCommand'
        }
        finally {
            Clear-TestState
        }
    }
}
