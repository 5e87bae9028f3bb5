@{
    RootModule             = 'bin/PsIpc.dll'
    ModuleVersion          = '0.1.0'
    CompatiblePSEditions   = @('Desktop', 'Core')
    GUID                   = '6f0f6c1e-3c61-4d57-9d4e-0b8f3a4f2d11'
    Author                 = 'PsIpc contributors'
    CompanyName            = 'PsIpc'
    Copyright              = '(c) PsIpc contributors. MIT License.'
    Description            = 'Inter-process communication for PowerShell: named pipes, TCP and Unix sockets, and shared memory between scripts, jobs and other programs, with objects, timeouts and Ctrl+C that work.'
    PowerShellVersion      = '5.1'
    DotNetFrameworkVersion = '4.7.2'
    TypesToProcess         = @('PsIpc.Types.ps1xml')
    FormatsToProcess       = @('PsIpc.Format.ps1xml')
    # The queue cmdlets: a small assembly without RabbitMQ.Client, which it loads on first use (bin/amqp).
    NestedModules          = @('bin/PsIpc.Queue.dll')
    FunctionsToExport      = @()
    CmdletsToExport        = @(
        'New-IpcPipe'
        'Send-IpcMessage'
        'Receive-IpcMessage'
        'Register-IpcMessageEvent'
        'Invoke-IpcRequest'
        'Close-IpcChannel'
        'Get-IpcChannel'
        'New-SharedMemory'
        'Read-SharedMemory'
        'Write-SharedMemory'
        'Update-SharedMemory'
        'Remove-SharedMemory'
        'Get-SharedMemory'
        'Start-IpcSocketServer'
        'Connect-IpcSocket'
        'Get-IpcSocketServer'
        'Stop-IpcSocketServer'
        'Connect-IpcQueue'
    )
    VariablesToExport      = @()
    AliasesToExport        = @()
    PrivateData            = @{
        PSData = @{
            Tags         = @('IPC', 'NamedPipe', 'Pipe', 'Socket', 'TCP', 'UnixSocket', 'SharedMemory', 'RabbitMQ', 'AMQP', 'Jobs', 'ThreadJob', 'Messaging', 'Linux', 'Windows', 'PSEdition_Core', 'PSEdition_Desktop')
            ProjectUri   = 'https://github.com/psipc/PsIpc'
            LicenseUri   = 'https://github.com/psipc/PsIpc/blob/main/LICENSE'
            # Online help is per cmdlet (Get-Help <cmdlet> -Online opens its docs/cmdlets page) and about_PsIpc;
            # no HelpInfoURI: there is no updatable-help server, and Update-Help would fail on one that is not.
            ReleaseNotes = 'Named pipes (New-IpcPipe), TCP, UDP and Unix socket servers and clients (Start-IpcSocketServer, Connect-IpcSocket), shared memory segments and queues (New-SharedMemory), RabbitMQ queues (Connect-IpcQueue); Send-/Receive-IpcMessage and Close-/Get-IpcChannel work on all of them. See https://github.com/psipc/PsIpc/blob/main/CHANGELOG.md'
        }
    }
}
