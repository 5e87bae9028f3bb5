# -Channel accepts a channel's name; names that several channels of the process share resolve to the
# one the caller's runspace opened, or fail clearly.
BeforeAll {
    . $PSScriptRoot/common.ps1
}

Describe 'Channel names' {
    AfterEach {
        Get-IpcChannel | Close-IpcChannel
    }

    It 'resolves a shared name to the channel this runspace opened: a thread job sends by name to its client' {
        $name = New-TestPipeName
        $server = New-IpcPipe -Name $name
        $job = Start-ThreadJob {
            Import-Module $using:env:PSIPC_MODULE_PATH
            $client = New-IpcPipe -Name $using:name -Connect -TimeoutSeconds 10
            Send-IpcMessage -Channel $using:name -InputObject 'sent by name'
            Close-IpcChannel -Channel $client
        }
        try {
            Receive-IpcMessage -Channel $name -TimeoutSeconds 10 | Should -Be 'sent by name'
        }
        finally {
            $job | Wait-Job -Timeout 20 | Remove-Job -Force
        }
    }

    It 'refuses a name two channels of this runspace share, naming both roles' {
        $name = New-TestPipeName
        $server = New-IpcPipe -Name $name
        $client = New-IpcPipe -Name $name -Connect -TimeoutSeconds 10
        $err = { Send-IpcMessage -Channel $name -InputObject 'x' } |
            Should -Throw -ErrorId 'ParameterArgumentTransformationError,PsIpc.Commands.SendIpcMessageCommand' -PassThru
        $err.Exception.Message | Should -Match 'Server, Client|Client, Server'
    }
}
