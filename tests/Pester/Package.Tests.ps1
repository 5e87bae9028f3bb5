<#
    Install and publish (issue 11, item 5): the staged module packed as `./build.ps1 Package` packs it
    (Compress-PSResource, with LICENSE and CHANGELOG.md) and published with Publish-PSResource, both to
    temporary folder repositories, installs with Install-PSResource, imports by name in a fresh pwsh, runs
    a message through a pipe, and uninstalls again.

    PSResourceGet keeps its repository list under $XDG_DATA_HOME (else ~/.local/share) and installs
    CurrentUser modules under ~/.local/share/powershell/Modules: every PSResourceGet command runs in a child
    pwsh whose HOME and XDG_DATA_HOME are a temporary folder, so the user's PSResourceRepository.xml and module
    folder are never touched (the test checks both). Windows keeps these folders elsewhere: not run there.
#>

BeforeAll {
    . $PSScriptRoot/common.ps1

    $script:Version = (Import-PowerShellDataFile -LiteralPath (Join-Path $RepoRoot 'PsIpc.psd1')).ModuleVersion
    $script:Root = Join-Path ([System.IO.Path]::GetTempPath()) "psipc-package-$([guid]::NewGuid().ToString('N').Substring(0, 8))"
    $script:HomeDir = Join-Path $Root 'home'
    $script:DataHome = Join-Path $HomeDir '.local/share'
    $script:PackRepo = Join-Path $Root 'packed'
    $script:PublishRepo = Join-Path $Root 'published'
    $null = New-Item -ItemType Directory -Force -Path $DataHome, $PackRepo, $PublishRepo

    # The user's own repository list, to prove it is left alone.
    $script:RealRepositoryFile = Join-Path ([Environment]::GetFolderPath('LocalApplicationData')) 'PSResourceGet/PSResourceRepository.xml'
    $script:RealRepositoryHash = if (Test-Path -LiteralPath $RealRepositoryFile) { (Get-FileHash -LiteralPath $RealRepositoryFile).Hash }
    $script:RealInstall = Join-Path ([Environment]::GetFolderPath('UserProfile')) '.local/share/powershell/Modules/PsIpc'
    $script:RealInstallBefore = Test-Path -LiteralPath $RealInstall

    # A copy of the staged module with the two files Package adds.
    $script:ModuleCopy = Join-Path $Root 'module/PsIpc'
    $null = New-Item -ItemType Directory -Force -Path (Split-Path $ModuleCopy)
    Copy-Item -LiteralPath $env:PSIPC_MODULE_PATH -Destination $ModuleCopy -Recurse
    Copy-Item -LiteralPath (Join-Path $RepoRoot 'LICENSE'), (Join-Path $RepoRoot 'CHANGELOG.md') -Destination $ModuleCopy

    function Invoke-IsolatedPwsh {
        # A fresh pwsh without PsIpc imported, its home, PSResourceGet state and user modules under $HomeDir.
        param([scriptblock] $ScriptBlock, [object[]] $ArgumentList = @(), [double] $TimeoutSeconds = 300)
        $result = Invoke-PwshChild -NoModule -ScriptBlock $ScriptBlock -ArgumentList $ArgumentList -TimeoutSeconds $TimeoutSeconds `
            -Environment @{ HOME = $HomeDir; XDG_DATA_HOME = $DataHome; PSIPC_MODULE_PATH = '' } -WorkingDirectory $Root
        $result.TimedOut | Should -BeFalse -Because "the child timed out`n$($result.Output -join "`n")`n$($result.Error)"
        $result.ExitCode | Should -Be 0 -Because "$($result.Output -join "`n")`n$($result.Error)"
        $result
    }
}

AfterAll {
    if ($script:Root -and (Test-Path -LiteralPath $script:Root)) { Remove-Item -LiteralPath $script:Root -Recurse -Force }
}

Describe 'The PsIpc package' -Skip:$IsWindows {
    It 'installs from a folder repository, imports by name in a fresh pwsh, moves a message, and uninstalls' {
        # Pack (what ./build.ps1 Package does) and publish, each to its own folder repository, then install.
        $installed = Invoke-IsolatedPwsh -ArgumentList $ModuleCopy, $PackRepo, $PublishRepo {
            param($Module, $PackRepo, $PublishRepo)
            Import-Module Microsoft.PowerShell.PSResourceGet
            Compress-PSResource -Path $Module -DestinationPath $PackRepo
            Register-PSResourceRepository -Name PsIpcPacked -Uri $PackRepo -Trusted
            Register-PSResourceRepository -Name PsIpcPublished -Uri $PublishRepo -Trusted
            Publish-PSResource -Path $Module -Repository PsIpcPublished
            "published: $((Find-PSResource -Name PsIpc -Repository PsIpcPublished).Version)"
            if ([Environment]::GetFolderPath('UserProfile') -ne $env:HOME) { throw "The user profile is not the test's home: $([Environment]::GetFolderPath('UserProfile'))" }
            Install-PSResource -Name PsIpc -Repository PsIpcPacked -Scope CurrentUser -TrustRepository
            "installed: $((Get-InstalledPSResource -Name PsIpc).InstalledLocation)"
        }
        $installed.Output | Should -Contain "published: $Version"
        $location = ($installed.Output | Where-Object { $_ -like 'installed: *' }) -replace '^installed: '
        $location | Should -BeLike "$DataHome*"

        $used = Invoke-IsolatedPwsh {
            $ErrorActionPreference = 'Stop'
            Import-Module PsIpc   # by name, from the user module folder Install-PSResource wrote
            $module = Get-Module PsIpc
            "base: $($module.ModuleBase)"
            "cmdlets: $((Get-Command -Module PsIpc -CommandType Cmdlet).Count)"
            "about: $((Get-Help about_PsIpc).Name)"
            "license: $(Test-Path (Join-Path $module.ModuleBase LICENSE))"
            "changelog: $(Test-Path (Join-Path $module.ModuleBase CHANGELOG.md))"
            $server = New-IpcPipe
            $client = New-IpcPipe -Name $server.Name -Connect -TimeoutSeconds 30
            Send-IpcMessage $client -InputObject 'through the installed module'
            "message: $(Receive-IpcMessage $server -Count 1 -TimeoutSeconds 30)"
            Close-IpcChannel $client, $server
            # The queue module and its engine came along (loaded on first use; no broker needed to load it).
            "queue: $((Get-Command Connect-IpcQueue).Source)"
            "engine: $(Test-Path (Join-Path $module.ModuleBase 'bin/amqp/net8.0/RabbitMQ.Client.dll'))"
        }
        $used.Output | Should -Contain 'message: through the installed module'
        $used.Output | Should -Contain 'about: about_PsIpc'
        $used.Output | Should -Contain 'license: True'
        $used.Output | Should -Contain 'changelog: True'
        $used.Output | Should -Contain 'queue: PsIpc'
        $used.Output | Should -Contain 'engine: True'
        ($used.Output | Where-Object { $_ -like 'base: *' }) | Should -BeLike "base: $DataHome*"
        $declared = @((Import-PowerShellDataFile -LiteralPath (Join-Path $RepoRoot 'PsIpc.psd1')).CmdletsToExport).Count
        $used.Output | Should -Contain "cmdlets: $declared"

        $removed = Invoke-IsolatedPwsh {
            Import-Module Microsoft.PowerShell.PSResourceGet
            Uninstall-PSResource -Name PsIpc -Scope CurrentUser
            Unregister-PSResourceRepository -Name PsIpcPacked, PsIpcPublished
            "left: $(@(Get-InstalledPSResource -Name PsIpc -ErrorAction SilentlyContinue).Count)"
            "available: $(@(Get-Module -ListAvailable -Name PsIpc).Count)"
            "repositories: $(@(Get-PSResourceRepository -Name PsIpc* -ErrorAction SilentlyContinue).Count)"
        }
        $removed.Output | Should -Contain 'left: 0'
        $removed.Output | Should -Contain 'available: 0'
        $removed.Output | Should -Contain 'repositories: 0'
    }

    It 'leaves the user''s own PSResourceGet repository list and module folder alone' {
        $now = if (Test-Path -LiteralPath $RealRepositoryFile) { (Get-FileHash -LiteralPath $RealRepositoryFile).Hash }
        $now | Should -Be $RealRepositoryHash
        Test-Path -LiteralPath $RealInstall | Should -Be $RealInstallBefore
    }
}

Describe 'The manifest' {
    It 'passes Test-ModuleManifest where the module is staged, and is the repository''s PsIpc.psd1 unchanged' {
        $staged = Join-Path $env:PSIPC_MODULE_PATH 'PsIpc.psd1'
        { Test-ModuleManifest -Path $staged -ErrorAction Stop } | Should -Not -Throw
        (Get-FileHash -LiteralPath $staged).Hash | Should -Be (Get-FileHash -LiteralPath (Join-Path $RepoRoot 'PsIpc.psd1')).Hash
    }

    It 'names the project, the license and the release notes' {
        $data = (Import-PowerShellDataFile -LiteralPath (Join-Path $RepoRoot 'PsIpc.psd1')).PrivateData.PSData
        $data.ProjectUri | Should -Be 'https://github.com/psipc/PsIpc'
        $data.LicenseUri | Should -Be 'https://github.com/psipc/PsIpc/blob/main/LICENSE'
        $data.ReleaseNotes | Should -Match 'CHANGELOG\.md'
        (Get-Content -LiteralPath (Join-Path $RepoRoot 'LICENSE') -TotalCount 3) -join ' ' | Should -Match 'MIT License.*PsIpc contributors'
    }

    It 'has a CHANGELOG.md entry for its version' {
        $changelog = Get-Content -LiteralPath (Join-Path $RepoRoot 'CHANGELOG.md') -Raw
        $changelog | Should -Match ('(?m)^## \[' + [regex]::Escape($Version) + '\] - \d{4}-\d{2}-\d{2}$')
        $changelog | Should -Match '(?m)^## \[Unreleased\]$'
    }

    It 'gives every cmdlet an online help page under the project (Get-Help -Online)' {
        foreach ($name in (Import-PowerShellDataFile -LiteralPath (Join-Path $RepoRoot 'PsIpc.psd1')).CmdletsToExport) {
            $uri = (Get-Help $name).relatedLinks.navigationLink | Where-Object { $_.uri } | Select-Object -First 1 -ExpandProperty uri
            $uri | Should -Be "https://github.com/psipc/PsIpc/blob/main/docs/cmdlets/$name.md" -Because $name
        }
    }
}
